"""IAM users for the moto server of the conformance suite (SigV4 and IAM enforced).

Two kinds of user, as in a real account:

- the admin, with full access: provisions tables (`edge-items provision
  dynamodb` is a deployment task) and creates the other users;
- service users, with the run-time statement ("ItemStore") of
  crates/store-dynamodb/iam-policy.json, optionally minus one action: what
  `edge-items serve` runs with. The policy's "ProvisionOnly" statement
  belongs to whoever deploys, so service users do not get it: the suite
  then also proves that serving never needs it.

moto authorises a transaction by its API name (`dynamodb:TransactWriteItems`),
where AWS has no such IAM action and authorises the item actions inside it
(a `Put` needs `dynamodb:PutItem`, a `Delete` `dynamodb:DeleteItem`). So a
service user gets moto's name of a transaction exactly when the statement
grants every item action our transactions contain (TRANSACTION_ACTIONS):
dropping `dynamodb:PutItem` also refuses keyed writes, as on AWS.

moto does not evaluate resource ARNs for DynamoDB (it authorises every
DynamoDB call against the resource "*"), so each statement's Resource is
widened to "*" here: the tests check the policy's actions; its ARNs are
for real AWS.

Usage (as the admin: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set):
    moto_iam.py ENDPOINT POLICY_FILE NAME[:ACTION]
prints {"AccessKeyId": ..., "SecretAccessKey": ...} for a new service user
NAME whose policy lacks ACTION (e.g. `no-update:dynamodb:UpdateItem`).
"""

import json
import os
import sys

import boto3

# The statement of iam-policy.json that the running service needs.
RUNTIME_STATEMENT = "ItemStore"
# Requests create_admin makes; all must fall within the server's
# INITIAL_NO_AUTH_ACTION_COUNT, and no more may, or unsigned calls pass.
ADMIN_BOOTSTRAP_REQUESTS = 4
# moto's action for a transaction, and the AWS item actions that authorise
# it: TransactGetItems reads with Get; TransactWriteItems (keyed writes,
# crates/dynamodb-protocol/src/ops/once.rs) holds Puts and Deletes.
TRANSACTION_ACTIONS = {
    "dynamodb:TransactGetItems": ["dynamodb:GetItem"],
    "dynamodb:TransactWriteItems": ["dynamodb:PutItem", "dynamodb:DeleteItem"],
}


def iam_client(endpoint, key_id, secret):
    return boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def create_user(iam, name, document):
    """A user with `document` as its one attached managed policy, and a key."""
    iam.create_user(UserName=name)
    arn = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=json.dumps(document))[
        "Policy"
    ]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def create_admin(endpoint):
    """The admin, made with the server's free (unsigned) requests."""
    iam = iam_client(endpoint, "bootstrap", "bootstrap")
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    return create_user(iam, "admin", document)


def service_policy(policy_file, without=None):
    """The run-time statement of the shipped policy, minus `without`."""
    with open(policy_file, encoding="utf-8") as f:
        policy = json.load(f)
    statements = [s for s in policy["Statement"] if s.get("Sid") == RUNTIME_STATEMENT]
    if len(statements) != 1:
        sys.exit(f"{policy_file} has no single statement with Sid {RUNTIME_STATEMENT!r}")
    statement = statements[0]
    actions = statement["Action"]
    if without is not None and without not in actions:
        sys.exit(f"{without} is not an action of the {RUNTIME_STATEMENT} statement")
    kept = [a for a in actions if a != without]
    kept += [
        moto_name
        for moto_name, needs in TRANSACTION_ACTIONS.items()
        if all(action in kept for action in needs)
    ]
    return {
        "Version": policy["Version"],
        "Statement": [{**statement, "Action": kept, "Resource": "*"}],
    }


def create_service_user(endpoint, admin, name, policy_file, without=None):
    iam = iam_client(endpoint, admin["AccessKeyId"], admin["SecretAccessKey"])
    return create_user(iam, name, service_policy(policy_file, without))


def main():
    endpoint, policy_file, spec = sys.argv[1:]
    name, _, without = spec.partition(":")
    admin = {
        "AccessKeyId": os.environ["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
    }
    key = create_service_user(endpoint, admin, name, policy_file, without or None)
    json.dump(key, sys.stdout)


if __name__ == "__main__":
    main()
