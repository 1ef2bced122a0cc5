"""The seed lesson's Item Tracker handlers as one Flask app: the baseline of
the benchmark (see README.md). STORE=dynamodb (boto3) or STORE=firestore
(google-cloud-firestore) picks which half of the lesson serves the routes."""

import base64
import json
import os
import uuid
from datetime import datetime
from decimal import Decimal

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

STORE = os.environ.get("STORE", "dynamodb")
MAX_LIMIT = 100


if STORE == "dynamodb":
    import boto3
    from boto3.dynamodb.conditions import Key
    from botocore.exceptions import ClientError

    # not in the lesson: endpoint and region from the environment (DynamoDB Local).
    ddb = boto3.resource(
        "dynamodb",
        endpoint_url=os.environ.get("DYNAMODB_ENDPOINT") or None,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )
    table = ddb.Table(os.environ.get("TABLE", "SeedItems"))

    def ensure_table():
        # not in the lesson (it creates the table in the console): create it
        # here, with the index that its query on userId needs.
        client = ddb.meta.client
        try:
            client.create_table(
                TableName=table.name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "itemId", "AttributeType": "S"},
                    {"AttributeName": "userId", "AttributeType": "S"},
                    {"AttributeName": "createdAt", "AttributeType": "S"},
                ],
                KeySchema=[{"AttributeName": "itemId", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[{
                    "IndexName": "userId-createdAt",
                    "KeySchema": [
                        {"AttributeName": "userId", "KeyType": "HASH"},
                        {"AttributeName": "createdAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }],
            )
        except client.exceptions.ResourceInUseException:
            pass  # it exists, or another worker is creating it right now
        client.get_waiter("table_exists").wait(TableName=table.name)

    ensure_table()

    def missing(e):
        return e.response["Error"]["Code"] == "ConditionalCheckFailedException"

    def create_item(item):
        table.put_item(Item=item)
        return item

    def get_item(item_id):
        response = table.get_item(Key={"itemId": item_id})
        return response.get("Item")

    def update_item(item_id, fields):
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(fields.values())}
        try:
            response = table.update_item(
                Key={"itemId": item_id},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                # not in the lesson: without this condition an update of a
                # missing id creates a half item.
                ConditionExpression="attribute_exists(itemId)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as e:
            if missing(e):
                return None
            raise
        return response["Attributes"]

    def like_item(item_id):
        # not in the lesson: likes are an atomic ADD (the lesson has a likes
        # field but no handler for it).
        try:
            response = table.update_item(
                Key={"itemId": item_id},
                UpdateExpression="ADD likes :one",
                ConditionExpression="attribute_exists(itemId)",
                ExpressionAttributeValues={":one": 1},
                ReturnValues="ALL_NEW",
            )
        except ClientError as e:
            if missing(e):
                return None
            raise
        return response["Attributes"]

    def list_items(user_id, limit, cursor):
        # not in the lesson: its query on userId cannot run on the table's key
        # (itemId); it needs the GSI userId-createdAt, newest first, paged.
        kwargs = {
            "IndexName": "userId-createdAt",
            "KeyConditionExpression": Key("userId").eq(user_id),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = json.loads(base64.urlsafe_b64decode(cursor))
            if not isinstance(kwargs["ExclusiveStartKey"], dict):
                raise ValueError("bad cursor")
        try:
            response = table.query(**kwargs)
        except ClientError as e:  # a cursor that is not a key of this index
            if e.response["Error"]["Code"] == "ValidationException":
                raise ValueError("bad cursor") from e
            raise
        items = response.get("Items", [])
        last = response.get("LastEvaluatedKey")
        next_cursor = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return items, next_cursor

    def delete_item(item_id):
        table.delete_item(Key={"itemId": item_id})

elif STORE == "firestore":
    from google.api_core.exceptions import NotFound
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    # The client reads FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT itself.
    db = firestore.Client()
    items_ref = db.collection(os.environ.get("COLLECTION", "seed-items"))

    def create_item(item):
        items_ref.document(item["itemId"]).set(item)
        return item

    def get_item(item_id):
        doc = items_ref.document(item_id).get()
        return doc.to_dict() if doc.exists else None

    def update_item(item_id, fields):
        try:
            items_ref.document(item_id).update(fields)
        except NotFound:
            return None
        # As the lesson: the fields sent, not a re-read of the whole item.
        return {"itemId": item_id, **fields}

    def like_item(item_id):
        ref = items_ref.document(item_id)
        try:
            ref.update({"likes": firestore.Increment(1)})
        except NotFound:
            return None
        # not in the lesson: update() does not return the new count, so read
        # it back (a second round trip; a concurrent like may show in it).
        return {"itemId": item_id, "likes": ref.get().get("likes")}

    def list_items(user_id, limit, cursor):
        # not in the lesson: paged, where userId instead of status (needs the
        # composite index userId ASC, createdAt DESC in production).
        query = (
            items_ref.where(filter=FieldFilter("userId", "==", user_id))
            .order_by("createdAt", direction=firestore.Query.DESCENDING)
            .limit(limit)
        )
        if cursor:
            last = items_ref.document(cursor).get()
            if not last.exists:
                raise ValueError("bad cursor")
            query = query.start_after(last)
        docs = list(query.stream())
        items = [{"itemId": doc.id, **doc.to_dict()} for doc in docs]
        return items, (docs[-1].id if len(docs) == limit else None)

    def delete_item(item_id):
        items_ref.document(item_id).delete()

else:
    raise SystemExit(f"STORE must be dynamodb or firestore, not {STORE!r}")


class JSONProvider(DefaultJSONProvider):
    # not in the lesson: boto3 returns numbers as Decimal, which json.dumps
    # refuses (and Flask would write as a string); likes must be an int.
    @staticmethod
    def default(o):
        if isinstance(o, Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        return DefaultJSONProvider.default(o)


app = Flask(__name__)
app.json = JSONProvider(app)
NOT_FOUND = ({"error": "Item not found"}, 404)


def out(item):
    return {"id": item["itemId"], **item}


@app.post("/items")
def http_create():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return {"error": "expected a JSON object"}, 400
    item = dict(data)
    item["itemId"] = str(item.pop("id", None) or item.get("itemId") or uuid.uuid4())
    item["createdAt"] = datetime.utcnow().isoformat()
    item.setdefault("likes", 0)
    return out(create_item(item)), 201


@app.get("/items/<item_id>")
def http_get(item_id):
    item = get_item(item_id)
    # not in the lesson (DynamoDB): it answers 200 with null for a missing item.
    return out(item) if item else NOT_FOUND


@app.patch("/items/<item_id>")
def http_update(item_id):
    # If-Match: * (must exist) is what both stores do anyway: a conditional
    # update_item, and Firestore's update() which fails on a missing document.
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return {"error": "expected a JSON object"}, 400
    fields = {k: v for k, v in data.items() if k not in ("id", "itemId")}
    if not fields:
        return {"error": "no fields to update"}, 400
    item = update_item(item_id, fields)
    return out(item) if item else NOT_FOUND


@app.post("/items/<item_id>/likes")
def http_like(item_id):
    item = like_item(item_id)
    return out(item) if item else NOT_FOUND


@app.get("/items")
def http_list():
    user_id = request.args.get("userId")
    try:
        limit = min(int(request.args.get("limit", 20)), MAX_LIMIT)
        if not user_id or limit < 1:
            raise ValueError
        items, next_cursor = list_items(user_id, limit, request.args.get("cursor"))
    except ValueError:  # also a cursor that does not decode
        return {"error": "need userId, a limit of 1 to 100 and a valid cursor"}, 400
    return {"items": [out(i) for i in items], "next": next_cursor}, 200


@app.delete("/items/<item_id>")
def http_delete(item_id):
    delete_item(item_id)
    return "", 204


@app.get("/healthz")
def healthz():
    return "ok", 200
