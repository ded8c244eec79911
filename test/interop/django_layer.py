"""A real Django Channels process on a channels_redis layer, driven by test/interop/django.test.ts.

usage: django_layer.py <core|pubsub> (<redis-url>[,<redis-url>...] | <JSON host dict>) <command> [args]
  group_send <group> <json>      group_send the message, then exit
  send <channel> <json>          send the message to a channel, then exit
  join <group> [count]           new_channel + group_add, print READY, print `count` received messages
  own [count]                    new_channel, print READY, print `count` received messages
  receive <channel> [count]      print READY, print `count` messages received on a named channel
With CHANNEL_LAYER_KEYS=k1,k2 in the environment the layer gets `symmetric_encryption_keys: [k1, k2]`.
Every line on stdout is JSON: {"ready": channel} first, then one {"message": ...} per message,
then {"done": true}; {"timeout": channel} and exit status 2 when a message does not come.
"""
import asyncio
import json
import os
import sys

from django.conf import settings

BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
RECEIVE_TIMEOUT = 15


def emit(value):
    sys.stdout.write(json.dumps(value, default=lambda b: {"bytes": list(b)}) + "\n")
    sys.stdout.flush()


async def receive_and_print(layer, channel, count):
    emit({"ready": channel})
    for _ in range(count):
        try:
            message = await asyncio.wait_for(layer.receive(channel), RECEIVE_TIMEOUT)
        except asyncio.TimeoutError:
            emit({"timeout": channel})
            raise SystemExit(2)
        emit({"message": message})


async def main(backend, hosts, command, args):
    config = {"hosts": hosts}
    keys = os.environ.get("CHANNEL_LAYER_KEYS")
    if keys:
        config["symmetric_encryption_keys"] = keys.split(",")
    settings.configure(CHANNEL_LAYERS={"default": {"BACKEND": BACKENDS[backend], "CONFIG": config}})
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if command == "group_send":
        await layer.group_send(args[0], json.loads(args[1]))
    elif command == "send":
        await layer.send(args[0], json.loads(args[1]))
    elif command == "join":
        channel = await layer.new_channel()
        await layer.group_add(args[0], channel)
        await receive_and_print(layer, channel, int(args[1]) if len(args) > 1 else 1)
    elif command == "own":
        channel = await layer.new_channel()
        await receive_and_print(layer, channel, int(args[0]) if args else 1)
    elif command == "receive":
        await receive_and_print(layer, args[0], int(args[1]) if len(args) > 1 else 1)
    else:
        raise SystemExit(f"unknown command {command!r}")
    emit({"done": True})


if __name__ == "__main__":
    # A JSON object is one host dict, e.g. {"sentinels": [["127.0.0.1", 26379]], "master_name": "mymaster"}.
    hosts = [json.loads(sys.argv[2])] if sys.argv[2].startswith("{") else sys.argv[2].split(",")
    asyncio.run(main(sys.argv[1], hosts, sys.argv[3], sys.argv[4:]))
