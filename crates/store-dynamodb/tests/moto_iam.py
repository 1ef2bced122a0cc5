"""Creates IAM users with access keys in a moto server, for the SigV4/IAM tests.

Usage: moto_iam.py ENDPOINT POLICY_FILE NAME[:ACTION] ...

For each NAME, creates a user whose policy is POLICY_FILE, minus ACTION
when given (for example `no-get:dynamodb:GetItem`), and prints one JSON
object: {"NAME": {"AccessKeyId": ..., "SecretAccessKey": ...}, ...}.

moto does not evaluate resource ARNs for DynamoDB (it authorises every
DynamoDB call against the resource "*"), so each statement's Resource is
widened to "*" here: the test checks the policy's actions; the ARNs are
for real AWS. Each user costs four requests, which must fall within the
server's INITIAL_NO_AUTH_ACTION_COUNT.
"""

import json
import sys

import boto3


def main() -> None:
    endpoint, policy_file, *users = sys.argv[1:]
    with open(policy_file, encoding="utf-8") as f:
        policy = json.load(f)
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    keys = {}
    for spec in users:
        name, _, without = spec.partition(":")
        statements = []
        for statement in policy["Statement"]:
            actions = [a for a in statement["Action"] if a != without]
            if actions:
                statements.append({**statement, "Action": actions, "Resource": "*"})
        document = {"Version": policy["Version"], "Statement": statements}
        iam.create_user(UserName=name)
        arn = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=json.dumps(document))[
            "Policy"
        ]["Arn"]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    json.dump(keys, sys.stdout)


if __name__ == "__main__":
    main()
