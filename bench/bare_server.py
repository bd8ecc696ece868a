"""`python -m bench.bare_server PORT GET_FILE LIST_FILE`: the bare read baseline.

A grpc.aio server with nothing but orders.v1.OrderService's two reads and the
health service, no interceptors: GetOrder and ListOrders answer, from memory,
messages the real front door returned (serialized in the two files), so the
bytes on the wire are the same and only the server's own work differs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from clients.proto.orders.v1 import orders_pb2 as pb


def stored_reads(
    get_order: pb.GetOrderResponse, list_orders: pb.ListOrdersResponse
) -> grpc.GenericRpcHandler:
    """GetOrder and ListOrders of orders.v1.OrderService, each answering its stored message.

    Requests are parsed and answers serialized as in any server; nothing else
    is done: no interceptor, no lookup, no copy.
    """

    async def answer_get(
        request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOrderResponse:
        return get_order

    async def answer_list(
        request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOrdersResponse:
        return list_orders

    service = pb.DESCRIPTOR.services_by_name["OrderService"].full_name
    return grpc.method_handlers_generic_handler(
        service,
        {
            "GetOrder": grpc.unary_unary_rpc_method_handler(
                answer_get,
                request_deserializer=pb.GetOrderRequest.FromString,
                response_serializer=pb.GetOrderResponse.SerializeToString,
            ),
            "ListOrders": grpc.unary_unary_rpc_method_handler(
                answer_list,
                request_deserializer=pb.ListOrdersRequest.FromString,
                response_serializer=pb.ListOrdersResponse.SerializeToString,
            ),
        },
    )


async def serve(port: int, reads: grpc.GenericRpcHandler) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((reads,))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"bare server on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server")
    parser.add_argument("port", type=int)
    parser.add_argument("get_order", type=Path, help="a serialized GetOrderResponse")
    parser.add_argument("list_orders", type=Path, help="a serialized ListOrdersResponse")
    args = parser.parse_args()
    reads = stored_reads(
        pb.GetOrderResponse.FromString(args.get_order.read_bytes()),
        pb.ListOrdersResponse.FromString(args.list_orders.read_bytes()),
    )
    asyncio.run(serve(args.port, reads))


if __name__ == "__main__":
    main()
