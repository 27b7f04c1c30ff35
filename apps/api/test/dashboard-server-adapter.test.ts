import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseDashboardPage, renderDashboardPage } from '../src/dashboard-server-adapter';

describe('the dashboard page, rendered without a template engine', () => {
  it('escapes <%= %> values, inserts <%- %> values as they are, and leaves the rest', () => {
    const parts = parseDashboardPage('<title><%= title %></title><script><%- uiConfig %></script><b><%=missing%></b>');
    expect(renderDashboardPage(parts, { title: '<Queues & "jobs">', uiConfig: '{"a":"<b>"}' })).toBe('<title>&lt;Queues &amp; &quot;jobs&quot;&gt;</title><script>{"a":"<b>"}</script><b></b>');
  });

  it('refuses any other template syntax, so a page that needs more fails when mounted', () => {
    expect(() => parseDashboardPage('<% if (x) { %>hi<% } %>')).toThrow(/template syntax beyond/);
    expect(() => parseDashboardPage('<%= a.b %>')).toThrow(/template syntax beyond/);
  });

  it("renders bull-board's own page: every value filled, no template syntax left", () => {
    const page = readFileSync(join(dirname(require.resolve('@bull-board/ui/package.json')), 'dist/index.ejs'), 'utf8');
    const html = renderDashboardPage(parseDashboardPage(page), { basePath: '/admin/queues/', title: 'Queues', uiConfig: '{}', favIconDefault: 'a.svg', favIconAlternative: 'b.png' });
    expect(html).not.toContain('<%');
    expect(html).toContain('<base href="/admin/queues/" />');
    expect(html).toContain('<script id="__UI_CONFIG__" type="application/json">{}</script>');
  });
});
