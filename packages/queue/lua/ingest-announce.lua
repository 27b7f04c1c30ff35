-- Publishes the ingest's event (IngestEvent JSON) from its status hash.
local function announce(channel, jobId, key, state, code, message)
  local h = redis.call('HMGET', key, 'dataset', 'done', 'total', 'version')
  local ev = { jobId = jobId, dataset = h[1], done = tonumber(h[2] or '0'), total = tonumber(h[3] or '0'), state = state }
  if h[4] then ev.version = tonumber(h[4]) end
  if code then ev.code = code end
  if message then ev.message = message end
  redis.call('PUBLISH', channel, cjson.encode(ev))
end
