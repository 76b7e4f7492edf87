"""pika over TLS against Tern: a password login and an EXTERNAL login with
a client certificate (both made with `tern cert`).

Environment: AMQPS_PORT, CA_FILE, CLIENT_CERT, CLIENT_KEY (the client
certificate's common name must be a Tern user). Exits 0 when both work.
"""
import os
import ssl

import pika

port = int(os.environ["AMQPS_PORT"])


def run(credentials, context, queue):
    params = pika.ConnectionParameters(
        host="127.0.0.1", port=port, credentials=credentials,
        ssl_options=pika.SSLOptions(context, server_hostname="localhost"))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.queue_declare(queue=queue, auto_delete=True)
    ch.basic_publish(exchange="", routing_key=queue, body=b"over tls")
    for _ in range(100):
        method, _props, body = ch.basic_get(queue=queue, auto_ack=True)
        if method:
            assert body == b"over tls", body
            break
        conn.sleep(0.05)
    else:
        raise SystemExit("message not received on " + queue)
    conn.close()


ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
run(pika.PlainCredentials("guest", "guest"), ctx, "pika-tls-plain")
print("password login over TLS: ok")

mtls = ssl.create_default_context(cafile=os.environ["CA_FILE"])
mtls.load_cert_chain(os.environ["CLIENT_CERT"], os.environ["CLIENT_KEY"])
run(pika.credentials.ExternalCredentials(), mtls, "pika-tls-external")
print("EXTERNAL login with a client certificate: ok")
