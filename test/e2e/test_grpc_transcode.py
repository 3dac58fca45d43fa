"""grpc-transcode with the real binary: curl's JSON calls to a python3-grpcio service built from
test/e2e/protos/bookstore.proto (descriptor set made by Debian's protoc): path templates, body
fields, query parameters, the proto3 JSON mapping, gRPC statuses as HTTP statuses, server
streaming as NDJSON flushed per message, oversize messages never a 200, and the descriptor set
reloaded when it changes."""
import json
import subprocess
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory

import conftest

PROTOS = Path(__file__).parent / "protos"


def descriptor_set(out, proto_text=None):
    """protoc --include_imports --descriptor_set_out=out bookstore.proto (or `proto_text`)."""
    source = PROTOS / "bookstore.proto"
    args = ["protoc", "--include_imports", f"--descriptor_set_out={out}", f"-I{PROTOS}"]
    if proto_text is not None:
        alt = Path(out).with_suffix(".proto")
        alt.write_text(proto_text)
        args += [f"-I{alt.parent}", str(alt)]
    else:
        args.append(str(source))
    subprocess.run(args, check=True, timeout=30)
    return str(out)


class Bookstore:
    """bookstore.Bookstore on grpcio, its messages made from the descriptor set."""

    def __init__(self, pb):
        fds = descriptor_pb2.FileDescriptorSet.FromString(Path(pb).read_bytes())
        m = message_factory.GetMessages(list(fds.file))
        self.Book = Book = m["bookstore.Book"]
        self.calls = []

        def book(book_id, shelf, title=None):
            b = Book(id=book_id, title=title or f"book {book_id} on shelf {shelf}",
                     genre=1, available=True, tags=["a", "b"], shelf_number=shelf)
            b.published.FromJsonString("2024-01-02T03:04:05Z")
            b.pages.value = 321
            b.extra.update({"a": 1, "nested": {"b": [True, None]}})
            b.length.FromJsonString("3.500s")
            return b

        def get_book(req, ctx):
            self.calls.append(("GetBook", req.shelf, req.book.id, req.loud))
            if req.book.id == 404:
                ctx.abort(grpc.StatusCode.NOT_FOUND, f"no book {req.book.id}")
            if req.book.id == 403:
                ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")
            b = book(req.book.id, req.shelf)
            if req.loud:
                b.title = b.title.upper()
            return b

        def create_book(req, ctx):
            self.calls.append(("CreateBook", req.shelf, req.book.title))
            return book(1000 + req.shelf, req.shelf, req.book.title)

        def list_books(req, ctx):
            for i in range(req.count):
                if req.fail and i == 2:
                    ctx.abort(grpc.StatusCode.INTERNAL, "shelf broke")
                time.sleep(req.delay_ms / 1000)
                yield book(i + 1, req.shelf)
            if req.fail:
                ctx.abort(grpc.StatusCode.INTERNAL, "shelf broke")

        def big(req, ctx):
            return Book(id=1, title="x" * req.size)

        def echo(req, ctx):
            return req

        def upload(it, ctx):
            return Book()

        req = {n: m[f"bookstore.{n}"] for n in
               ("GetBookRequest", "CreateBookRequest", "ListBooksRequest", "BigRequest")}
        unary = grpc.unary_unary_rpc_method_handler
        handlers = {
            "GetBook": unary(get_book, req["GetBookRequest"].FromString, Book.SerializeToString),
            "GetTitle": unary(get_book, req["GetBookRequest"].FromString, Book.SerializeToString),
            "CreateBook": unary(create_book, req["CreateBookRequest"].FromString,
                                Book.SerializeToString),
            "ListBooks": grpc.unary_stream_rpc_method_handler(
                list_books, req["ListBooksRequest"].FromString, Book.SerializeToString),
            "Big": unary(big, req["BigRequest"].FromString, Book.SerializeToString),
            "Echo": unary(echo, Book.FromString, Book.SerializeToString),
            "Upload": grpc.stream_unary_rpc_method_handler(upload, Book.FromString,
                                                           Book.SerializeToString),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("bookstore.Bookstore", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(0)


@pytest.fixture
def pb(tmp_path):
    return descriptor_set(tmp_path / "bookstore.pb")


@pytest.fixture
def bookstore(pb):
    s = Bookstore(pb)
    yield s
    s.stop()


def gateway(portico, bookstore, pb, server=None, **config):
    return portico(
        server=server,
        upstreams={"books": {"targets": [f"127.0.0.1:{bookstore.port}"], "protocol": "h2c"}},
        routes=[{"name": "books", "match": {"path_prefix": "/"}, "upstream": "books",
                 "plugins": [{"name": "grpc-transcode",
                              "config": {"descriptor_set": pb,
                                         "services": ["bookstore.Bookstore"], **config}}]}])


def curl(port, path, method=None, data=None, http2=False):
    return conftest.curl(port, path, http2, method, (), data,
                         "application/json" if data is not None else None)


@pytest.mark.parametrize("http2", [False, True])
def test_unary_call_with_path_variables_and_the_proto3_json_mapping(portico, bookstore, pb,
                                                                    http2):
    p = gateway(portico, bookstore, pb)
    status, h, body = curl(p.port, "/v1/shelves/7/books/42?loud=true", http2=http2)
    assert status == 200, body
    assert h["content-type"] == "application/json"
    assert not any(k.startswith("grpc-") for k in h)
    book = json.loads(body)
    assert book == {
        "id": "42",  # int64 as a string
        "title": "BOOK 42 ON SHELF 7",
        "published": "2024-01-02T03:04:05Z",
        "pages": 321,  # a wrapper is its value
        "genre": "FICTION",  # enums by name
        "extra": {"a": 1, "nested": {"b": [True, None]}},
        "available": True,
        "tags": ["a", "b"],
        "length": "3.500s",
        "shelfNumber": 7,
    }
    assert bookstore.calls[-1] == ("GetBook", 7, 42, True)
    # an additional binding of the same method
    status, _, body = curl(p.port, "/v1/books/9", http2=http2)
    assert status == 200 and json.loads(body)["id"] == "9"


def test_body_field_unannotated_method_and_print_options(portico, bookstore, pb):
    p = gateway(portico, bookstore, pb, print={"preserve_proto_field_names": True,
                                                "always_print_primitive_fields": True})
    status, _, body = curl(p.port, "/v1/shelves/3/books", "POST",
                           json.dumps({"title": "New", "pages": 10}).encode())
    assert status == 200, body
    book = json.loads(body)
    assert book["title"] == "New" and book["id"] == "1003" and book["shelf_number"] == 3
    assert bookstore.calls[-1] == ("CreateBook", 3, "New")
    status, _, body = curl(p.port, "/bookstore.Bookstore/Echo", "POST",
                           json.dumps({"id": "5", "title": "echo", "genre": "SCIENCE"}).encode())
    assert status == 200, body
    echoed = json.loads(body)
    assert echoed["title"] == "echo" and echoed["genre"] == "SCIENCE"
    assert echoed["available"] is False  # printed although default
    # response_body: only that field
    status, _, body = curl(p.port, "/v1/titles/5")
    assert (status, json.loads(body)) == (200, "book 5 on shelf 0")


def test_grpc_errors_become_http_statuses_with_a_json_error(portico, bookstore, pb):
    p = gateway(portico, bookstore, pb)
    status, h, body = curl(p.port, "/v1/shelves/1/books/404")
    assert status == 404
    err = json.loads(body)
    assert err["error"] == "no book 404" and err["status"] == 404 and err["grpc_status"] == 5
    assert err["request_id"] == h["x-request-id"]
    assert curl(p.port, "/v1/shelves/1/books/403")[0] == 403
    # the client's mistakes: 400 (bad JSON, wrong types, unknown fields), 404 (no method)
    assert curl(p.port, "/v1/shelves/1/books", "POST", b"{not json")[0] == 400
    status, _, body = curl(p.port, "/v1/shelves/x/books/1")
    assert status == 400, body
    status, _, body = curl(p.port, "/v1/shelves/1/books/1?nope=1")
    assert status == 400 and "nope" in json.loads(body)["error"]
    # A percent-escape that decodes to bytes that are not UTF-8 (Latin-1 here), in the query
    # or the path: refused with the field's name (before, a JSON library's exception text).
    assert curl(p.port, "/v1/books/1?book.title=caf%C3%A9")[0] == 200
    status, _, body = curl(p.port, "/v1/books/1?book.title=caf%E9")
    assert status == 400 and json.loads(body)["error"].endswith(
        '"book.title" is not UTF-8 once percent-decoded'), body
    status, _, body = curl(p.port, "/v1/books/%E9")
    assert status == 400 and '"book.id" is not UTF-8' in json.loads(body)["error"], body
    status, _, body = curl(p.port, "/v2/unknown")
    assert status == 404 and "no gRPC method" in json.loads(body)["error"]
    # client streaming is not published
    assert curl(p.port, "/bookstore.Bookstore/Upload", "POST", b"{}")[0] == 404


def test_server_streaming_as_ndjson_flushed_per_message(portico, bookstore, pb):
    p = gateway(portico, bookstore, pb)
    started = time.monotonic()
    proc = subprocess.Popen(["curl", "-sS", "-N", "-D", "-", "--max-time", "10",
                             f"http://127.0.0.1:{p.port}/v1/shelves/2/books?count=3&delay_ms=400"],
                            stdout=subprocess.PIPE)
    head, arrivals = [], []
    for line in proc.stdout:
        if line.startswith(b"{"):
            arrivals.append((time.monotonic() - started, json.loads(line)))
        else:
            head.append(line.decode().strip().lower())
    assert proc.wait() == 0
    assert "content-type: application/x-ndjson" in head
    assert [b["id"] for _, b in arrivals] == ["1", "2", "3"]
    # each line as its message came: the first long before the last
    assert arrivals[0][0] < arrivals[2][0] - 0.5, arrivals

    # an error after two messages: a last line says so; before any: a real HTTP error
    status, _, body = curl(p.port, "/v1/shelves/2/books?count=5&fail=true")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert status == 200 and len(lines) == 3
    assert lines[2]["error"]["grpc_status"] == 13 and lines[2]["error"]["error"] == "shelf broke"
    status, _, body = curl(p.port, "/v1/shelves/2/books?count=0&fail=true")
    assert status == 500 and json.loads(body)["grpc_status"] == 13


def test_oversize_messages_are_never_a_200(portico, bookstore, pb):
    p = gateway(portico, bookstore, pb, max_message_size="1KiB")
    assert curl(p.port, "/v1/big/100")[0] == 200
    status, _, body = curl(p.port, "/v1/big/5000")
    assert status == 502, body
    status, _, body = curl(p.port, "/bookstore.Bookstore/Echo", "POST",
                           json.dumps({"title": "y" * 2000}).encode())
    assert status == 413, body


def test_descriptor_set_is_reloaded_when_it_changes(portico, bookstore, pb, tmp_path):
    p = gateway(portico, bookstore, pb, server={"watch_config": True})
    assert curl(p.port, "/v9/echo", "POST", b"{}")[0] == 404
    text = (PROTOS / "bookstore.proto").read_text().replace(
        "rpc Echo(Book) returns (Book);",
        'rpc Echo(Book) returns (Book) { option (google.api.http) = '
        '{ post: "/v9/echo" body: "*" }; }')
    before = p.metric("portico_config_reloads_total")
    new = descriptor_set(tmp_path / "next.pb", text)
    Path(new).replace(pb)
    conftest.wait_for(lambda: p.metric("portico_config_reloads_total") > before,
                      timeout=10, what="reload after the descriptor set changed")
    status, _, body = curl(p.port, "/v9/echo", "POST", json.dumps({"title": "v9"}).encode())
    assert status == 200 and json.loads(body)["title"] == "v9"


def test_config_errors_name_the_problem(tmp_path, pb):
    def errors(config):
        cfg = conftest.base_config(1, 2, {"g": {"targets": ["127.0.0.1:1"], "protocol": "h2c"}},
                                   [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "g",
                                     "plugins": [{"name": "grpc-transcode", "config": config}]}])
        code, out = conftest.validate(cfg, tmp_path)
        assert code != 0
        return out

    assert "no service \"bookstore.Nope\"" in errors({"descriptor_set": pb,
                                                      "services": ["bookstore.Nope"]})
    assert "cannot read descriptor set" in errors({"descriptor_set": str(tmp_path / "none.pb"),
                                                   "services": ["bookstore.Bookstore"]})
    (tmp_path / "junk.pb").write_bytes(b"\xff\xff junk")
    assert "is not a FileDescriptorSet" in errors({"descriptor_set": str(tmp_path / "junk.pb"),
                                                   "services": ["bookstore.Bookstore"]})
    assert "services: must name a service" in errors({"descriptor_set": pb})
