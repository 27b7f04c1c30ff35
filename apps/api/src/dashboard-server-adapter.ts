import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import escapeHtml from 'escape-html';
import express, { Router, type Request, type Response } from 'express';
import type { AppControllerRoute, AppViewRoute, BullBoardQueues, ControllerHandlerReturnType, IServerAdapter, UIConfig } from '@bull-board/api/typings/app';

/**
 * bull-board's server side on Express, without a template engine. @bull-board/express renders the
 * dashboard's one page through ejs, which compiles templates into functions with `new Function` (and
 * calls it once when it is loaded): the API then generated code at run time, and could not run
 * with `--disallow-code-generation-from-strings`, which every tilefarm process now does so that no
 * string (a user's formula least of all) can ever become code. The page is a fixed file of
 * bull-board's with a few `<%= name %>` (escaped) and `<%- name %>` (raw) values; any other ejs
 * construct is refused when the dashboard is mounted, so an upgrade that needs more fails loudly.
 * Routes, statics and errors are wired as @bull-board/express wires them.
 */
type PagePart = { text: string } | { value: string; raw: boolean };

const VALUE = /<%([=-])\s*([A-Za-z_]\w*)\s*%>/g;

export function parseDashboardPage(template: string): PagePart[] {
  const parts: PagePart[] = [];
  let at = 0;
  for (const m of template.matchAll(VALUE)) {
    parts.push({ text: template.slice(at, m.index) }, { value: m[2]!, raw: m[1] === '-' });
    at = m.index + m[0].length;
  }
  parts.push({ text: template.slice(at) });
  const rest = parts.find((p) => 'text' in p && p.text.includes('<%'));
  if (rest && 'text' in rest) throw new Error(`the dashboard page uses template syntax beyond <%= name %> and <%- name %>: ${rest.text.slice(rest.text.indexOf('<%'), rest.text.indexOf('<%') + 40)}`);
  return parts;
}

export function renderDashboardPage(parts: PagePart[], params: Record<string, string | undefined>): string {
  return parts.map((p) => ('text' in p ? p.text : p.raw ? (params[p.value] ?? '') : escapeHtml(params[p.value] ?? ''))).join('');
}

export class DashboardServerAdapter implements IServerAdapter {
  private readonly app = express();
  private viewsPath = '';
  private queues: BullBoardQueues | undefined;
  private uiConfig: UIConfig = {};
  private errorHandler: ((error: Error) => ControllerHandlerReturnType) | undefined;

  constructor(private readonly basePath: string) {}

  setQueues(queues: BullBoardQueues): this {
    this.queues = queues;
    return this;
  }

  setViewsPath(viewPath: string): this {
    this.viewsPath = viewPath;
    return this;
  }

  setStaticPath(route: string, path: string): this {
    this.app.use(route, express.static(path));
    return this;
  }

  setUIConfig(config: UIConfig = {}): this {
    this.uiConfig = config;
    return this;
  }

  setErrorHandler(handler: (error: Error) => ControllerHandlerReturnType): this {
    this.errorHandler = handler;
    return this;
  }

  setEntryRoute(route: AppViewRoute): this {
    const pages = new Map<string, PagePart[]>();
    const page = (name: string) => pages.get(name) ?? pages.set(name, parseDashboardPage(readFileSync(join(this.viewsPath, name), 'utf8'))).get(name)!;
    // Read and checked now, not at the first visit: a page this adapter cannot render fails the start.
    page(route.handler({ basePath: this.basePath, uiConfig: this.uiConfig }).name);
    this.app[route.method](route.route, (_req: Request, res: Response) => {
      const { name, params } = route.handler({ basePath: this.basePath, uiConfig: this.uiConfig });
      res.type('html').send(renderDashboardPage(page(name), params));
    });
    return this;
  }

  setApiRoutes(routes: AppControllerRoute[]): this {
    const onError = this.errorHandler;
    if (!onError || !this.queues) throw new Error('bull-board sets its queues and error handler before its routes');
    const router = Router();
    router.use(express.json());
    for (const route of routes) {
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
        router[method](route.route, (req, res, next) => {
          Promise.resolve(route.handler({ queues: this.queues!, uiConfig: this.uiConfig, query: req.query, params: req.params, body: req.body, headers: req.headers as Record<string, string> }))
            .then((answer) => res.status(answer.status ?? 200).json(answer.body))
            .catch(next);
        });
      }
    }
    router.use((err: Error, _req: Request, res: Response, _next: unknown) => {
      const answer = onError(err);
      res.status(answer.status ?? 500).send(answer.body);
    });
    this.app.use(router);
    return this;
  }

  getRouter(): express.Express {
    return this.app;
  }
}
