"""A moto server with SigV4 and IAM enforced, for one test process.

Usage: moto_server.py POLICY_FILE

Starts moto on a free port of 127.0.0.1, creates the admin with the only
unsigned requests it allows (INITIAL_NO_AUTH_ACTION_COUNT), checks that
unsigned and wrongly signed calls are refused from then on, creates the
service user (see moto_iam.py), and prints one JSON line:
{"endpoint": ..., "admin": {key}, "service": {key}}. It then serves until
its stdin closes, which happens when the test process exits, however it
exits: nothing outlives the tests.
"""

import json
import logging
import os
import sys
import threading

import moto_iam

# Read by moto's settings at import: set it first.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(moto_iam.ADMIN_BOOTSTRAP_REQUESTS)

import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402
from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402


class OneAtATime:
    """Serves one request at a time. moto's DynamoDB checks a condition and
    writes without a lock, so two concurrent conditional writes can both
    pass; real DynamoDB (and DynamoDB Local) apply them atomically. moto is
    here for signatures and IAM, so give it DynamoDB's atomicity by
    serialising requests (the response body is read inside the lock)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))


def refused(endpoint, key_id, secret):
    """Whether moto refuses a DynamoDB call signed with this key."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    try:
        client.list_tables()
    except botocore.exceptions.ClientError:
        return True
    return False


def main():
    (policy_file,) = sys.argv[1:]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    endpoint = f"http://{host}:{port}"
    admin = moto_iam.create_admin(endpoint)
    # Enforcement must be on now, or the suite would prove nothing.
    if not refused(endpoint, "bootstrap", "bootstrap"):
        sys.exit("moto accepted an unknown key: IAM enforcement is off")
    if not refused(endpoint, admin["AccessKeyId"], "wrong-secret"):
        sys.exit("moto accepted a wrong signature: SigV4 enforcement is off")
    if refused(endpoint, admin["AccessKeyId"], admin["SecretAccessKey"]):
        sys.exit("moto refused the admin's own key")
    service = moto_iam.create_service_user(endpoint, admin, "service", policy_file)
    print(json.dumps({"endpoint": endpoint, "admin": admin, "service": service}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
