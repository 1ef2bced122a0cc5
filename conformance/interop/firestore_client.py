"""The seed's google-cloud-firestore code, run against the service's documents.

Usage: firestore_client.py PROJECT ACTION JSON   (FIRESTORE_EMULATOR_HOST set)

Each action is the seed's own call on collection "items" and prints one
JSON object:

- get {"id"}: {"exists": bool, "fields": {...}, "types": {field: Python type}}
  (datetimes printed as ISO 8601 text)
- set_seed {"id", ...extra}: the seed's create_item, document(id).set() of
  {"itemId": id, "name": "My Item", "createdAt": datetime.utcnow(),
  "description": "A great item"} plus the extra fields;
  prints {"createdAt": the datetime written}
- add_seed {"name", "description", ...extra}: the seed's
  collection.add({... "createdAt": datetime.utcnow()}) plus the extra
  fields; prints {"id": the new document's id, "createdAt": ...}
- list_status {"status"}: the seed's list_items query (status ==, order
  by createdAt descending); prints {"ids": [...]}
- update_name {"id", "name"}: the seed's update_item
- delete {"id"}: the seed's delete_item
"""

import json
import sys
import warnings
from datetime import datetime

from google.cloud import firestore

# The seed calls datetime.utcnow(), deprecated since Python 3.12.
warnings.filterwarnings("ignore", category=DeprecationWarning)
# The seed filters with positional where() arguments, which now warns.
warnings.filterwarnings("ignore", message="Detected filter using positional arguments")


def plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main():
    project, action, argument = sys.argv[1:]
    args = json.loads(argument)
    db = firestore.Client(project=project)
    items = db.collection("items")
    if action == "get":
        doc = items.document(args["id"]).get()
        fields = doc.to_dict() or {}
        types = {k: type(v).__name__ for k, v in fields.items()}
        out = {"exists": doc.exists, "fields": plain(fields), "types": types}
    elif action == "set_seed":
        item = {
            "itemId": args.pop("id", "item-123"),
            "name": "My Item",
            "createdAt": datetime.utcnow(),
            "description": "A great item",
        }
        item.update(args)
        items.document(item["itemId"]).set(item)
        out = {"createdAt": item["createdAt"].isoformat()}
    elif action == "add_seed":
        created_at = datetime.utcnow()
        doc = items.add(
            {
                "name": args.pop("name", None),
                "description": args.pop("description", None),
                "createdAt": created_at,
                **args,
            }
        )
        out = {"id": doc[1].id, "createdAt": created_at.isoformat()}
    elif action == "list_status":
        query = items.where("status", "==", args["status"]).order_by(
            "createdAt", direction=firestore.Query.DESCENDING
        )
        out = {"ids": [doc.id for doc in query.stream()]}
    elif action == "update_name":
        items.document(args["id"]).update({"name": args["name"]})
        out = {}
    elif action == "delete":
        items.document(args["id"]).delete()
        out = {}
    else:
        sys.exit(f"unknown action {action}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
