#!/usr/bin/env node
// A local stand-in for Stripe Checkout, for the end-to-end test and for
// `./dev run` without a Stripe account. It speaks the part of Stripe's wire
// format miraged uses (docs/payments.md):
//
//   POST /v1/checkout/sessions   form-encoded, Bearer secret key, Idempotency-Key;
//                                answers Stripe's checkout.session JSON (or its error shape)
//   GET  /v1/checkout/sessions/ID
//   POST /v1/checkout/sessions/ID/expire (an open session; 400 once complete)
//   GET  /pay/ID                 the "hosted checkout" page the session's url points at
//   POST /pay/ID                 "Pay": sends the signed checkout.session.completed
//                                webhook (Stripe-Signature: t=...,v1=HMAC-SHA256(whsec, t.body))
//                                to miraged, then redirects to success_url
//
// Usage: fake-stripe.mjs --port N --secret-key sk_test_... --webhook-secret whsec_...
//                        --webhook-url http://127.0.0.1:8080/api/stripe/webhook
// Prints "fake-stripe: listening on http://127.0.0.1:PORT" when ready (--port 0: any free port).
import { createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    "secret-key": { type: "string", default: "sk_test_mirage" },
    "webhook-secret": { type: "string", default: "whsec_mirage" },
    "webhook-url": { type: "string", default: "http://127.0.0.1:8080/api/stripe/webhook" },
  },
});

const sessions = new Map(); // id -> checkout.session object
const idempotent = new Map(); // Idempotency-Key -> session id
const id = (prefix) => `${prefix}_test_${randomBytes(12).toString("hex")}`;
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function json(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}
function stripeError(res, status, type, message, param) {
  json(res, status, { error: { type, message, ...(param ? { param } : {}) } });
}
async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function createSession(form, base) {
  const amount = Number(form.get("line_items[0][price_data][unit_amount]"));
  const quantity = Number(form.get("line_items[0][quantity]") ?? "1");
  const metadata = {};
  for (const [key, value] of form) {
    const m = /^metadata\[(.+)\]$/.exec(key);
    if (m) metadata[m[1]] = value;
  }
  const sessionId = id("cs");
  return {
    id: sessionId,
    object: "checkout.session",
    amount_total: amount * quantity,
    currency: form.get("line_items[0][price_data][currency]"),
    client_reference_id: form.get("client_reference_id"),
    metadata,
    mode: form.get("mode"),
    payment_intent: null,
    payment_status: "unpaid",
    status: "open",
    success_url: form.get("success_url"),
    cancel_url: form.get("cancel_url"),
    url: `${base}/pay/${sessionId}`,
    // Not Stripe's: kept for the checkout page.
    _product: form.get("line_items[0][price_data][product_data][name]") ?? "Mirage credits",
  };
}
const publicSession = ({ _product, ...session }) => session;

async function sendWebhook(session) {
  const event = {
    id: id("evt"),
    object: "event",
    api_version: "2024-06-20",
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    type: "checkout.session.completed",
    data: { object: publicSession(session) },
  };
  const body = JSON.stringify(event);
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac("sha256", args["webhook-secret"]).update(`${t}.${body}`).digest("hex");
  const response = await fetch(args["webhook-url"], {
    method: "POST",
    headers: { "Content-Type": "application/json", "Stripe-Signature": `t=${t},v1=${v1}` },
    body,
  });
  return { status: response.status, text: await response.text() };
}

function checkoutPage(session) {
  const amount = (session.amount_total / 100).toFixed(2);
  return `<!doctype html><html><head><meta charset="utf-8"><title>Checkout (test)</title>
<style>body{font:16px system-ui;max-width:420px;margin:3rem auto}button{font:inherit;padding:.5rem 1.5rem}</style></head>
<body><p><b>Test mode</b>: a local stand-in for Stripe Checkout; no money moves.</p>
<h1>${escape(session._product)}</h1><p>${amount} ${escape(session.currency.toUpperCase())}</p>
<form method="post" action="/pay/${escape(session.id)}"><button type="submit" id="pay">Pay</button></form>
<p><a href="${escape(session.cancel_url)}">Cancel</a></p></body></html>`;
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${req.headers.host}`);
    const base = `http://${req.headers.host}`;
    if (url.pathname.startsWith("/v1/")) {
      if (req.headers.authorization !== `Bearer ${args["secret-key"]}`)
        return stripeError(res, 401, "invalid_request_error", "Invalid API Key provided");
    }
    if (req.method === "POST" && url.pathname === "/v1/checkout/sessions") {
      const form = new URLSearchParams(await readBody(req));
      const key = req.headers["idempotency-key"];
      if (key && idempotent.has(key)) return json(res, 200, publicSession(sessions.get(idempotent.get(key))));
      for (const required of ["mode", "success_url", "line_items[0][price_data][unit_amount]", "line_items[0][price_data][currency]"])
        if (!form.get(required)) return stripeError(res, 400, "invalid_request_error", `Missing required param: ${required}.`, required);
      const session = createSession(form, base);
      sessions.set(session.id, session);
      if (key) idempotent.set(key, session.id);
      return json(res, 200, publicSession(session));
    }
    // POST /v1/checkout/sessions/ID/expire: only an open session expires
    // (Stripe answers 400 otherwise); the reply is the session.
    const expireMatch = /^\/v1\/checkout\/sessions\/([\w]+)\/expire$/.exec(url.pathname);
    if (req.method === "POST" && expireMatch) {
      const session = sessions.get(expireMatch[1]);
      if (!session) return stripeError(res, 404, "invalid_request_error", `No such checkout.session: '${expireMatch[1]}'`);
      if (session.status !== "open" && session.status !== "expired")
        return stripeError(res, 400, "invalid_request_error",
          `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${session.status}".`);
      Object.assign(session, { status: "expired" });
      return json(res, 200, publicSession(session));
    }
    const sessionMatch = /^\/v1\/checkout\/sessions\/([\w]+)$/.exec(url.pathname);
    if (req.method === "GET" && sessionMatch) {
      const session = sessions.get(sessionMatch[1]);
      if (!session) return stripeError(res, 404, "invalid_request_error", `No such checkout.session: '${sessionMatch[1]}'`);
      return json(res, 200, publicSession(session));
    }
    const payMatch = /^\/pay\/([\w]+)$/.exec(url.pathname);
    const session = payMatch && sessions.get(payMatch[1]);
    if (payMatch && !session) {
      res.writeHead(404, { "Content-Type": "text/plain" });
      return res.end("no such checkout session\n");
    }
    if (req.method === "GET" && session) {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      return res.end(checkoutPage(session));
    }
    if (req.method === "POST" && session) {
      if (session.status !== "complete") {
        Object.assign(session, { status: "complete", payment_status: "paid", payment_intent: id("pi") });
        const delivery = await sendWebhook(session);
        if (delivery.status < 200 || delivery.status >= 300) {
          Object.assign(session, { status: "open", payment_status: "unpaid", payment_intent: null });
          res.writeHead(502, { "Content-Type": "text/plain" });
          return res.end(`the webhook answered ${delivery.status}: ${delivery.text}\n`);
        }
        console.log(`fake-stripe: ${session.id} paid, webhook answered ${delivery.status} ${delivery.text}`);
      }
      res.writeHead(303, { Location: session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id) });
      return res.end();
    }
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found\n");
  } catch (err) {
    console.error("fake-stripe:", err);
    if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(`${err}\n`);
  }
});

server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  console.log(`fake-stripe: listening on http://${args.host}:${port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
