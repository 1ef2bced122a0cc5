"""The seed's boto3 code, run against the service's DynamoDB table.

Usage: dynamodb_client.py ENDPOINT TABLE ACTION JSON

Each action is the seed's own call (boto3's resource API, table key
`itemId`) and prints one JSON object:

- get {"itemId"}: {"item": ITEM or null, "types": {attribute: Python type}}
- put_seed {"itemId", ...extra}: puts the seed's item (`name` "My Item",
  `description` "A great item", `createdAt` datetime.utcnow().isoformat())
  plus the extra attributes (numbers as Decimal, as boto3 wants);
  prints {"item": what was put}
- query_user {"userId"}: the seed's Query on userId, on the byUser index
  (the seed queries the table itself, which only works with userId as its
  key); prints {"items": [...]}
- update_name {"itemId", "name"}: the seed's update_item (SET #n = :name)
- delete {"itemId"}: the seed's delete_item

Whole Decimals print as JSON numbers, others as their exact text (a float
would round); `types` tells a number stored as N (Decimal) from a string.
Credentials and region come from the usual AWS_* variables.
"""

import json
import os
import sys
import warnings
from datetime import datetime
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Key

# The seed calls datetime.utcnow(), deprecated since Python 3.12.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def plain(value):
    """JSON for an item: integral Decimals as numbers, others as their exact text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [plain(v) for v in value]
    return value


def main():
    endpoint, table_name, action, argument = sys.argv[1:]
    args = json.loads(argument, parse_float=Decimal, parse_int=Decimal)
    region = os.environ.get("AWS_REGION") or None  # else boto3's own default chain
    table = boto3.resource("dynamodb", endpoint_url=endpoint, region_name=region).Table(table_name)
    if action == "get":
        item = table.get_item(Key={"itemId": args["itemId"]}).get("Item")
        types = {k: type(v).__name__ for k, v in (item or {}).items()}
        out = {"item": plain(item), "types": types}
    elif action == "put_seed":
        item = {
            "itemId": args.pop("itemId", "item-123"),
            "name": "My Item",
            "createdAt": datetime.utcnow().isoformat(),
            "description": "A great item",
        }
        item.update(args)
        table.put_item(Item=item)
        out = {"item": plain(item)}
    elif action == "query_user":
        response = table.query(
            IndexName="byUser", KeyConditionExpression=Key("userId").eq(args["userId"])
        )
        out = {"items": plain(response.get("Items", []))}
    elif action == "update_name":
        table.update_item(
            Key={"itemId": args["itemId"]},
            UpdateExpression="SET #n = :name",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":name": args["name"]},
        )
        out = {}
    elif action == "delete":
        table.delete_item(Key={"itemId": args["itemId"]})
        out = {}
    else:
        sys.exit(f"unknown action {action}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
