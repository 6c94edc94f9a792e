"""A producer of the objectsync AMQP inbox in Python, with pika: publisher
confirms, an exclusive reply queue, a correlation id per message.

Run by the Rust test `inbox_python`; reads AMQP_URL, INBOX_EXCHANGE,
API_KEY and OBJECT_TYPE from the environment, publishes an upsert and
then the same batch with a wrong key, and prints each answer as one JSON
line: {"status", "body", "correlation_id", "sent_correlation_id"}.
"""

import json
import os
import sys
import uuid

import pika


def main():
    params = pika.URLParameters(os.environ["AMQP_URL"])
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.confirm_delivery()
    reply_queue = channel.queue_declare(queue="", exclusive=True).method.queue
    exchange = os.environ["INBOX_EXCHANGE"]
    object_type = os.environ["OBJECT_TYPE"]
    batch = {"records": [{"identifiers": {"ext_id": "py-1"},
                          "attributes": {"name": "From Python"}}]}
    for api_key in (os.environ["API_KEY"], "osk_not-a-key"):
        correlation_id = str(uuid.uuid4())
        # Raises pika.exceptions.NackError or UnroutableError if the broker
        # does not take it.
        channel.basic_publish(
            exchange=exchange,
            routing_key=object_type,
            body=json.dumps(batch).encode(),
            properties=pika.BasicProperties(
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
                headers={"api-key": api_key, "kind": "upsert"},
                message_id=str(uuid.uuid4()),
                reply_to=reply_queue,
                correlation_id=correlation_id,
            ),
            mandatory=True,
        )
        for method, props, body in channel.consume(reply_queue, inactivity_timeout=30):
            if method is None:
                sys.exit("no answer within 30 s")
            channel.basic_ack(method.delivery_tag)
            if props.correlation_id != correlation_id:
                continue
            print(json.dumps({
                "status": props.headers["status"],
                "body": json.loads(body),
                "correlation_id": props.correlation_id,
                "sent_correlation_id": correlation_id,
            }), flush=True)
            break
        channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
