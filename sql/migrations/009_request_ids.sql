-- Issue 17: the id of the API request that started a stream (the
-- X-Request-Id it answered), so that the worker's log lines about the
-- stream carry it and an operator can follow one stream from the request
-- through the API's and the worker's logs. NULL for streams started before.
ALTER TABLE streams ADD COLUMN request_id text
  CHECK (request_id ~ '^[A-Za-z0-9._-]{1,64}$');
