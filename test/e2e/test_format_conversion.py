"""format-conversion with the real binary: a JSON client calling a SOAP service (envelope in,
Body out, Fault -> 502), XML answers as JSON with stable types, form bodies as JSON, JSON answers
as XML; over HTTP/1.1 and HTTP/2."""
import json
import xml.etree.ElementTree as ET

import pytest

import conftest
import http_service

QUOTE = """<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:q="urn:quotes">
  <soap:Body><q:GetQuoteResponse><q:Quote currency="EUR">
    <q:Line sku="a1"><q:Qty>2</q:Qty></q:Line><q:Total>19.90</q:Total><q:Paid>false</q:Paid>
    <q:Note/></q:Quote></q:GetQuoteResponse></soap:Body></soap:Envelope>"""

FAULT = """<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>
<faultcode>soap:Client</faultcode><faultstring>Unknown symbol ZZZ</faultstring>
</soap:Fault></soap:Body></soap:Envelope>"""


class Service(http_service.Service):
    """POST /soap: a SOAP 1.1 quote service (Fault for symbol ZZZ); records what it got.
    POST /echo: the body and its Content-Type back as JSON. GET /json: a JSON document."""

    def __init__(self):
        self.got = []
        svc = self

        class Handler(http_service.Handler):
            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                svc.got.append((self.path, dict(self.headers), data))
                if self.path == "/soap":
                    fault = b"ZZZ" in data
                    self.reply(500 if fault else 200, "text/xml; charset=utf-8",
                               (FAULT if fault else QUOTE).encode())
                else:
                    self.reply(200, "application/json", json.dumps(
                        {"type": self.headers.get("Content-Type"), "body": data.decode()}).encode())

            def do_GET(self):
                # Latin-1 bytes where UTF-8 belongs: a form's escape and a text answer.
                if self.path == "/latin1-form":
                    return self.reply(200, "application/x-www-form-urlencoded", b"ok=1&name=caf%E9")
                if self.path == "/latin1-text":
                    return self.reply(200, "text/plain", b"caf\xe9")
                self.reply(200, "application/json", json.dumps(
                    {"id": 7, "tags": ["a", "b"], "price": {"@currency": "EUR", "#text": 5}}).encode())

        super().__init__(Handler)


@pytest.fixture
def svc():
    s = Service()
    yield s
    s.stop()


def curl(port, path, data=None, ctype="application/json", http2=False):
    return conftest.curl(port, path, http2, None, (), data, ctype)

def route(name, prefix, config, rewrite=None):
    r = {"name": name, "match": {"path_prefix": prefix}, "upstream": "s",
         "plugins": [{"name": "format-conversion", "config": config}]}
    if rewrite:
        r["rewrite"] = rewrite
    return r


@pytest.mark.parametrize("http2", [False, True])
def test_json_client_calls_a_soap_service(portico, svc, http2):
    p = portico(upstreams={"s": [svc.address]}, routes=[route("quote", "/soap", {
        "request": {"from": "json", "to": "xml", "root": "GetQuote"},
        "response": {"from": "xml", "to": "json",
                     "arrays": ["/Envelope/Body/GetQuoteResponse/Quote/Line"],
                     "types": {"/Envelope/Body/GetQuoteResponse/Quote/Total": "number",
                               "/Envelope/Body/GetQuoteResponse/Quote/Paid": "boolean",
                               "/Envelope/Body/GetQuoteResponse/Quote/Line/Qty": "integer"}},
        "soap": {"version": "1.1", "action": "urn:GetQuote"}})])
    status, h, body = curl(p.port, "/soap", data=b'{"Symbol": "ACME", "Days": 3}', http2=http2)
    assert status == 200, body
    assert h["content-type"].startswith("application/json")
    assert json.loads(body) == {"GetQuoteResponse": {"Quote": {
        "@currency": "EUR", "Line": [{"@sku": "a1", "Qty": 2}], "Total": 19.9, "Paid": False,
        "Note": None}}}
    _, headers, sent = svc.got[-1]
    assert headers["SOAPAction"] == '"urn:GetQuote"'
    assert headers["Content-Type"].startswith("text/xml")
    env = ET.fromstring(sent)
    ns = {"soap": "http://schemas.xmlsoap.org/soap/envelope/"}
    quote = env.find("soap:Body/GetQuote", ns)
    assert quote.find("Symbol").text == "ACME" and quote.find("Days").text == "3"
    status, h, body = curl(p.port, "/soap", data=b'{"Symbol": "ZZZ"}', http2=http2)
    assert status == 502
    err = json.loads(body)
    assert "Unknown symbol ZZZ" in err["error"] and err["request_id"]


def test_form_to_json_and_json_to_xml(portico, svc):
    p = portico(upstreams={"s": [svc.address]}, routes=[
        route("form", "/echo", {"request": {"from": "form", "to": "json"}}),
        route("xml", "/doc", {"response": {"from": "json", "to": "xml", "root": "Doc"}},
              rewrite="/json")])
    status, _, body = curl(p.port, "/echo", data=b"a=1&b=x+y&a=2",
                           ctype="application/x-www-form-urlencoded")
    assert status == 200
    got = json.loads(body)
    assert got["type"] == "application/json"
    assert json.loads(got["body"]) == {"a": ["1", "2"], "b": "x y"}
    status, h, body = curl(p.port, "/doc")
    assert status == 200 and h["content-type"].startswith("application/xml")
    doc = ET.fromstring(body)
    assert doc.tag == "Doc" and doc.find("id").text == "7"
    assert [t.text for t in doc.findall("tags")] == ["a", "b"]
    assert doc.find("price").get("currency") == "EUR" and doc.find("price").text == "5"


def test_bad_bodies(portico, svc):
    p = portico(upstreams={"s": [svc.address]}, routes=[
        route("x", "/echo", {"request": {"from": "json", "to": "xml"}})])
    status, _, body = curl(p.port, "/echo", data=b'{"broken": ')
    assert status == 400 and json.loads(body)["request_id"]
    status, _, _ = curl(p.port, "/echo", data=b'{"bad key": 1}')
    assert status == 400
    n = len(svc.got)
    status, _, _ = curl(p.port, "/echo", data=b"<x/>", ctype="text/plain")  # not JSON: untouched
    assert status == 200 and len(svc.got) == n + 1


def test_bytes_that_are_not_utf8(portico, svc):
    """JSON holds UTF-8 only. A form whose escape decodes to other bytes is refused (the client's
    400, the upstream's 502, never a guess); a flow's text answer is opaque, and its bytes that
    are not UTF-8 become U+FFFD in the composed JSON. Before, the flow hung with no answer."""
    p = portico(upstreams={"s": [svc.address]}, routes=[
        route("form", "/echo", {"request": {"from": "form", "to": "json"}}),
        {"name": "f", "match": {"path": "/form-call"}, "flow": {
            "calls": [{"name": "q", "upstream": "s", "path": "/latin1-form", "format": "form"}]}},
        {"name": "t", "match": {"path": "/text-call"}, "flow": {
            "calls": [{"name": "q", "upstream": "s", "path": "/latin1-text", "format": "text"}],
            "respond": {"body": {"text": "{q.body}", "again": "x {q.body}"}}}}])
    n = len(svc.got)
    status, _, body = curl(p.port, "/echo", data=b"a=1&name=caf%E9",
                           ctype="application/x-www-form-urlencoded")
    assert status == 400, body
    err = json.loads(body)
    assert "form field 2 is not UTF-8" in err["error"] and err["request_id"]
    assert len(svc.got) == n  # never forwarded
    status, _, body = curl(p.port, "/form-call")
    assert status == 502, body
    assert "answer is not a valid form: form field 2" in json.loads(body)["error"]
    status, _, body = curl(p.port, "/text-call")
    assert status == 200, body
    assert json.loads(body) == {"text": "caf\ufffd", "again": "x caf\ufffd"}


def test_flow_reads_xml_answers_and_responds_in_xml(portico, svc):
    p = portico(upstreams={"s": [svc.address]}, routes=[
        {"name": "f", "match": {"path": "/quote"}, "flow": {
            "calls": [{"name": "q", "upstream": "s", "method": "POST", "path": "/soap",
                       "body": {"symbol": "ACME"}, "format": "xml"}],
            "respond": {"body": {"total": "{q.body.Envelope.Body.GetQuoteResponse.Quote.Total}",
                                 "currency": "{q.body.Envelope.Body.GetQuoteResponse.Quote.@currency}"}}}},
        {"name": "x", "match": {"path": "/quote.xml"}, "flow": {
            "calls": [{"name": "d", "upstream": "s", "path": "/json", "group": "doc"}],
            "respond": {"format": "xml", "root": "Answer"}}}])
    status, _, body = curl(p.port, "/quote")
    assert status == 200, body
    assert json.loads(body) == {"total": "19.90", "currency": "EUR"}
    status, h, body = curl(p.port, "/quote.xml")
    assert status == 200 and h["content-type"].startswith("application/xml")
    doc = ET.fromstring(body)
    assert doc.tag == "Answer" and doc.find("doc/id").text == "7"
