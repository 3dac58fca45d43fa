"""A gRPC service for the tests, on python3-grpcio with raw-bytes messages (no protobuf code
generation): one method per call kind, plus methods that fail, sleep or report metadata."""
import time
from concurrent import futures

import grpc

SERVICE = "test.Echo"


def _unary(request, context):
    text = request.decode()
    if text.startswith("fail:"):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, text[5:])
    if text.startswith("sleep:"):
        time.sleep(float(text[6:]))
    md = dict(context.invocation_metadata())
    context.set_trailing_metadata((("x-trailer", "t-" + text),))
    return ("echo:" + text + "|" + md.get("x-meta", "")).encode()


def _server_stream(request, context):
    count = int(request.decode())
    for i in range(count):
        yield f"item-{i}".encode()
        time.sleep(0.01)


def _client_stream(request_iterator, context):
    parts = [r.decode() for r in request_iterator]
    return ("joined:" + ",".join(parts)).encode()


def _bidi(request_iterator, context):
    for r in request_iterator:
        yield ("pong:" + r.decode()).encode()


def serve(port=0):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


class Client:
    def __init__(self, target, credentials=None):
        self.channel = (grpc.secure_channel(target, credentials) if credentials
                        else grpc.insecure_channel(target))
        path = f"/{SERVICE}/"
        self.unary = self.channel.unary_unary(path + "Unary")
        self.server_stream = self.channel.unary_stream(path + "ServerStream")
        self.client_stream = self.channel.stream_unary(path + "ClientStream")
        self.bidi = self.channel.stream_stream(path + "Bidi")
        self.missing = self.channel.unary_unary("/test.Nope/Missing")

    def close(self):
        self.channel.close()
