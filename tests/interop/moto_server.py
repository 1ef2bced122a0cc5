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

import moto_iam

# Read by moto's settings at import: set it first.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(moto_iam.ADMIN_BOOTSTRAP_REQUESTS)

import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402


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
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
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
    server.stop()


if __name__ == "__main__":
    main()
