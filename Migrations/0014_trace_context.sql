-- Tracing (issue 18): the W3C traceparent of the request that published a message, so that its delivery attempts are
-- spans of the same trace. NULL when tracing is off.
ALTER TABLE messages ADD COLUMN trace_context TEXT;

-- An application that opts in sends each attempt's W3C traceparent to its receivers (off by default: a trace id is
-- Tern's own business unless the customer asks for it).
ALTER TABLE applications ADD COLUMN send_traceparent BOOLEAN NOT NULL DEFAULT FALSE;
