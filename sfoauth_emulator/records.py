"""The emulated org's data: the ``Account`` and ``Contact`` schemas, their seeded
records, an in-memory store per org, and the small SOQL subset the REST API answers.

Errors are raised as :class:`RestError` carrying Salesforce's REST error shape
(``[{"message", "errorCode", "fields"?}]``); the REST module turns them into responses.
The store is guarded by :attr:`EmulatorState.lock` like everything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._ids import to_18

__all__ = [
    "SCHEMAS",
    "FieldSpec",
    "OrgRecords",
    "RecordStore",
    "RestError",
    "SObjectSpec",
    "no_such_column",
    "not_found",
    "parse_soql",
    "run_query",
    "schema",
]

_ID_RE = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")


class RestError(Exception):
    """A REST API error: HTTP ``status`` and one ``[{"message", "errorCode"}]`` item.

    Args:
        status: HTTP status.
        code: Salesforce ``errorCode`` (``NOT_FOUND``, ``MALFORMED_ID``…).
        message: the ``message``.
        fields: the ``fields`` list Salesforce adds to field-level errors.
    """

    def __init__(
        self, status: int, code: str, message: str, fields: Iterable[str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields) if fields is not None else None

    def body(self) -> list[dict[str, Any]]:
        """The JSON error array."""
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


def not_found() -> RestError:
    """Salesforce's 404 for an unknown resource."""
    return RestError(404, "NOT_FOUND", "The requested resource does not exist")


# ---------------------------------------------------------------------- schemas
@dataclass(frozen=True)
class FieldSpec:
    """One field of an sObject, with the describe attributes clients read."""

    name: str
    label: str
    type: str = "string"
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    defaulted_on_create: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    name_field: bool = False

    @property
    def required(self) -> bool:
        """Must be given on create (Salesforce: createable, not nillable, no
        default)."""
        return self.createable and not self.nillable and not self.defaulted_on_create

    @property
    def soap_type(self) -> str:
        return _SOAP_TYPES.get(self.type, "xsd:string")

    def describe(self) -> dict[str, Any]:
        """The field's entry in ``describe`` (the attributes clients use)."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": self.soap_type,
            "length": self.length,
            "byteLength": self.length * 3,
            "precision": 18 if self.type == "currency" else 0,
            "scale": 2 if self.type == "currency" else 0,
            "digits": 9 if self.type == "int" else 0,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "defaultedOnCreate": self.defaulted_on_create,
            "calculated": not self.createable and not self.defaulted_on_create,
            "custom": False,
            "externalId": False,
            "idLookup": self.type == "id" or self.name == "Email",
            "unique": False,
            "nameField": self.name_field,
            "filterable": self.type != "textarea",
            "sortable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "currency", "datetime"),
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "value": v}
                for v in self.picklist
            ],
            "restrictedPicklist": False,
            "defaultValue": None,
            "inlineHelpText": None,
        }


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "currency": "xsd:double",
    "double": "xsd:double",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
}
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "int": (int,),
    "currency": (int, float),
    "double": (int, float),
}


def _read_only(name: str, label: str, kind: str, length: int = 0) -> FieldSpec:
    return FieldSpec(
        name,
        label,
        kind,
        length,
        createable=False,
        updateable=False,
        nillable=False,
        defaulted_on_create=True,
        reference_to=("User",) if kind == "reference" else (),
        relationship_name=label.removesuffix(" ID").replace(" ", "")
        if kind == "reference"
        else None,
    )


def _system_fields() -> tuple[FieldSpec, ...]:
    return (
        _read_only("Id", "Record ID", "id", 18),
        _read_only("IsDeleted", "Deleted", "boolean"),
        FieldSpec(
            "OwnerId",
            "Owner ID",
            "reference",
            18,
            nillable=False,
            defaulted_on_create=True,
            reference_to=("User",),
            relationship_name="Owner",
        ),
        _read_only("CreatedDate", "Created Date", "datetime"),
        _read_only("CreatedById", "Created By ID", "reference", 18),
        _read_only("LastModifiedDate", "Last Modified Date", "datetime"),
        _read_only("SystemModstamp", "System Modstamp", "datetime"),
    )


@dataclass(frozen=True)
class SObjectSpec:
    """A standard object the emulator serves: its describe and its seeded rows."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldSpec, ...]
    seed: tuple[Mapping[str, Any], ...] = ()

    def field(self, name: str) -> FieldSpec | None:
        """The field called ``name`` (case-insensitive, as Salesforce compares)."""
        lowered = name.lower()
        return next((f for f in self.fields if f.name.lower() == lowered), None)

    def urls(self, version: str) -> dict[str, str]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "compactLayouts": f"{base}/describe/compactLayouts",
            "rowTemplate": f"{base}/{{ID}}",
            "describe": f"{base}/describe",
            "sobject": base,
        }

    def summary(self, version: str) -> dict[str, Any]:
        """The object's entry in the global describe (``GET /sobjects``)."""
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": False,
            "customSetting": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "undeletable": True,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "layoutable": True,
            "mergeable": True,
            "replicateable": True,
            "triggerable": True,
            "feedEnabled": True,
            "activateable": False,
            "deprecatedAndHidden": False,
            "urls": self.urls(version),
        }

    def describe(self, version: str) -> dict[str, Any]:
        """``GET /sobjects/<name>/describe``."""
        body = self.summary(version)
        body.update(
            {
                "fields": [f.describe() for f in self.fields],
                "childRelationships": [],
                "recordTypeInfos": [],
                "supportedScopes": [{"label": "All", "name": "everything"}],
                "networkScopeFieldName": None,
                "sobjectDescribeOption": "FULL",
            }
        )
        return body


_ACCOUNT = SObjectSpec(
    name="Account",
    label="Account",
    label_plural="Accounts",
    key_prefix="001",
    fields=(
        *_system_fields(),
        FieldSpec(
            "Name", "Account Name", "string", 255, nillable=False, name_field=True
        ),
        FieldSpec(
            "Type",
            "Account Type",
            "picklist",
            255,
            picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner"),
        ),
        FieldSpec(
            "Industry",
            "Industry",
            "picklist",
            255,
            picklist=("Apparel", "Banking", "Manufacturing", "Media", "Technology"),
        ),
        FieldSpec("Phone", "Account Phone", "phone", 40),
        FieldSpec("Website", "Website", "url", 255),
        FieldSpec("BillingCity", "Billing City", "string", 40),
        FieldSpec("AnnualRevenue", "Annual Revenue", "currency"),
        FieldSpec("NumberOfEmployees", "Employees", "int"),
        FieldSpec("Description", "Account Description", "textarea", 32000),
    ),
    seed=(
        {
            "Id": "001XX000003DHPh",
            "Name": "Acme Corporation",
            "Industry": "Manufacturing",
        },
        {"Id": "001XX000003DHPi", "Name": "Global Media", "Industry": "Media"},
        {"Id": "001XX000003DHPj", "Name": "Burlington Textiles", "Industry": "Apparel"},
    ),
)

_CONTACT = SObjectSpec(
    name="Contact",
    label="Contact",
    label_plural="Contacts",
    key_prefix="003",
    fields=(
        *_system_fields(),
        FieldSpec(
            "AccountId",
            "Account ID",
            "reference",
            18,
            reference_to=("Account",),
            relationship_name="Account",
        ),
        FieldSpec("FirstName", "First Name", "string", 40),
        FieldSpec("LastName", "Last Name", "string", 80, nillable=False),
        FieldSpec(
            "Name",
            "Full Name",
            "string",
            121,
            createable=False,
            updateable=False,
            nillable=False,
            name_field=True,
        ),
        FieldSpec("Email", "Email", "email", 80),
        FieldSpec("Phone", "Business Phone", "phone", 40),
        FieldSpec("Title", "Title", "string", 128),
    ),
    seed=(
        {
            "Id": "003XX000004TmiQ",
            "FirstName": "Rose",
            "LastName": "Gonzalez",
            "Email": "rose@acme.example.com",
            "AccountId": "001XX000003DHPh",
        },
        {
            "Id": "003XX000004TmiR",
            "FirstName": "Sean",
            "LastName": "Forbes",
            "Email": "sean@globalmedia.example.com",
            "AccountId": "001XX000003DHPi",
        },
    ),
)

SCHEMAS: dict[str, SObjectSpec] = {
    spec.name.lower(): spec for spec in (_ACCOUNT, _CONTACT)
}


def no_such_column(name: str, spec: SObjectSpec) -> RestError:
    """``INVALID_FIELD`` for a field the object does not have (record bodies and
    ``?fields=``)."""
    return RestError(
        400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}"
    )


def schema(name: str) -> SObjectSpec:
    """The schema of sObject ``name`` (case-insensitive); ``NOT_FOUND`` otherwise."""
    spec = SCHEMAS.get(name.lower())
    if spec is None:
        raise not_found()
    return spec


def _timestamp(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    )


def valid_id(value: str) -> str | None:
    """The 18-character form of a well-formed Salesforce id, else ``None``."""
    if not _ID_RE.fullmatch(value):
        return None
    try:
        return to_18(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------- the store
@dataclass
class OrgRecords:
    """One org's records by sObject name and id, plus its deleted ids."""

    rows: dict[str, dict[str, dict[str, Any]]]
    deleted: set[str] = field(default_factory=set)
    serial: int = 0
    api_requests: int = 0

    def find(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        for name, rows in self.rows.items():
            if record_id in rows:
                return name, rows[record_id]
        return None


class RecordStore:
    """In-memory records per org, seeded on first use (call with the state lock
    held)."""

    def __init__(self) -> None:
        self._orgs: dict[str, OrgRecords] = {}

    def clear(self) -> None:
        """Forget every change: each org starts again from the seeded rows."""
        self._orgs.clear()

    def org(self, org: str, owner_id: str, now: float) -> OrgRecords:
        """The records of ``org`` (seeded the first time it is asked for)."""
        data = self._orgs.get(org)
        if data is None:
            data = OrgRecords(rows={spec.name: {} for spec in SCHEMAS.values()})
            for spec in SCHEMAS.values():
                for seed in spec.seed:
                    values = dict(seed)
                    record_id = to_18(values.pop("Id"))
                    row = _new_row(spec, record_id, owner_id, now)
                    row.update(values)
                    if row.get("AccountId"):
                        row["AccountId"] = to_18(row["AccountId"])
                    _derive(spec, row)
                    data.rows[spec.name][record_id] = row
            self._orgs[org] = data
        return data

    # ------------------------------------------------------------------ CRUD
    def create(
        self,
        data: OrgRecords,
        spec: SObjectSpec,
        body: object,
        owner_id: str,
        now: float,
    ) -> str:
        values = _checked_values(data, spec, body, creating=True)
        data.serial += 1
        record_id = to_18(f"{spec.key_prefix}XX{data.serial:010d}")
        row = _new_row(spec, record_id, owner_id, now)
        row.update(values)
        _derive(spec, row)
        data.rows[spec.name][record_id] = row
        return record_id

    def get(self, data: OrgRecords, spec: SObjectSpec, raw_id: str) -> dict[str, Any]:
        record_id = valid_id(raw_id)
        if record_id is None:
            # Salesforce reads a non-id as an external-id field name.
            raise RestError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {raw_id}",
            )
        row = data.rows[spec.name].get(record_id)
        if row is None:
            raise not_found()
        return row

    def _existing(
        self, data: OrgRecords, spec: SObjectSpec, raw_id: str
    ) -> dict[str, Any]:
        record_id = valid_id(raw_id)
        if record_id is None or not record_id.startswith(spec.key_prefix):
            raise RestError(
                400,
                "MALFORMED_ID",
                f"{spec.label} ID: id value of incorrect type: {raw_id}",
                ["Id"],
            )
        if record_id in data.deleted:
            raise RestError(404, "ENTITY_IS_DELETED", "entity is deleted")
        row = data.rows[spec.name].get(record_id)
        if row is None:
            raise not_found()
        return row

    def update(
        self, data: OrgRecords, spec: SObjectSpec, raw_id: str, body: object, now: float
    ) -> None:
        row = self._existing(data, spec, raw_id)
        values = _checked_values(data, spec, body, creating=False)
        row.update(values)
        row["LastModifiedDate"] = row["SystemModstamp"] = _timestamp(now)
        _derive(spec, row)

    def delete(self, data: OrgRecords, spec: SObjectSpec, raw_id: str) -> None:
        row = self._existing(data, spec, raw_id)
        del data.rows[spec.name][row["Id"]]
        data.deleted.add(row["Id"])


def _new_row(
    spec: SObjectSpec, record_id: str, owner_id: str, now: float
) -> dict[str, Any]:
    row: dict[str, Any] = {f.name: None for f in spec.fields}
    stamp = _timestamp(now)
    row.update(
        {
            "Id": record_id,
            "IsDeleted": False,
            "OwnerId": owner_id,
            "CreatedById": owner_id,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
        }
    )
    return row


def _derive(spec: SObjectSpec, row: dict[str, Any]) -> None:
    if spec.name == "Contact":
        row["Name"] = " ".join(
            p for p in (row.get("FirstName"), row.get("LastName")) if p
        )


def _checked_values(
    data: OrgRecords, spec: SObjectSpec, body: object, *, creating: bool
) -> dict[str, Any]:
    """Validate a create/update body the way Salesforce reports problems (``body`` is
    the parsed JSON, or the parse error to report)."""
    if isinstance(body, RestError):
        raise body
    if not isinstance(body, dict):
        kind = "START_ARRAY" if isinstance(body, list) else "VALUE_STRING"
        raise RestError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of SObject from {kind} value at [line:1, column:1]",
        )
    values: dict[str, Any] = {}
    read_only: list[str] = []
    for key, value in body.items():
        if key == "attributes":
            continue
        spec_field = spec.field(key)
        if spec_field is None:
            raise no_such_column(key, spec)
        allowed = spec_field.createable if creating else spec_field.updateable
        if not allowed:
            read_only.append(spec_field.name)
            continue
        values[spec_field.name] = _checked_value(data, spec, spec_field, value)
    if read_only:
        raise RestError(
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
            "security settings of this field and verify that it is read/write for your "
            "profile or permission set.",
            read_only,
        )
    missing = [
        f.name
        for f in spec.fields
        if f.required
        and (
            values.get(f.name) in (None, "")
            if (creating or f.name in values)
            else False
        )
    ]
    if missing:
        raise RestError(
            400,
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            missing,
        )
    return values


def _checked_value(
    data: OrgRecords, spec: SObjectSpec, spec_field: FieldSpec, value: object
) -> object:
    if value is None:
        return None
    expected = _JSON_TYPES.get(spec_field.type, (str,))
    if not isinstance(value, expected) or (
        isinstance(value, bool) and bool not in expected
    ):
        raise RestError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {spec_field.soap_type.split(':')[1]} from "
            f"{type(value).__name__} value {value!r} or request may be missing a "
            f"required field at [line:1, column:1]",
        )
    if isinstance(value, str) and spec_field.length and len(value) > spec_field.length:
        raise RestError(
            400,
            "STRING_TOO_LONG",
            f"{spec_field.label}: data value too large: {value[:20]}... "
            f"(max length={spec_field.length})",
            [spec_field.name],
        )
    if spec_field.type == "reference" and isinstance(value, str) and value:
        ref_id = valid_id(value)
        if ref_id is None:
            raise RestError(
                400,
                "MALFORMED_ID",
                f"{spec_field.label}: id value of incorrect type: {value}",
                [spec_field.name],
            )
        target = data.find(ref_id)
        if spec_field.reference_to != ("User",) and (
            target is None or target[0] not in spec_field.reference_to
        ):
            raise RestError(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                [spec_field.name],
            )
        return ref_id
    return value


# ---------------------------------------------------------------------- SOQL subset
@dataclass(frozen=True)
class Soql:
    """A parsed query of the supported subset."""

    spec: SObjectSpec
    fields: tuple[str, ...]
    count: bool
    where: tuple[tuple[str, str, object], ...]
    order_by: str | None
    descending: bool
    limit: int | None


_SOQL_RE = re.compile(
    r"""(?isx)^\s*select\s+(?P<fields>.+?)\s+from\s+(?P<object>\w+)
    (?:\s+where\s+(?P<where>.+?))?
    (?:\s+order\s+by\s+(?P<order>\w+)(?:\s+(?P<dir>asc|desc))?)?
    (?:\s+limit\s+(?P<limit>\d+))?\s*$"""
)
_CONDITION_RE = re.compile(
    r"""(?is)^\s*(?P<field>\w+)\s*(?P<op>=|!=)\s*
    (?:'(?P<text>(?:[^'\\]|\\.)*)'|(?P<bare>[\w.+-]+))\s*$""",
    re.VERBOSE,
)


def _invalid_field(name: str, spec: SObjectSpec) -> RestError:
    return RestError(
        400,
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{spec.name}'. If you are attempting to use "
        "a custom field, be sure to append the '__c' after the custom field name. Please "
        "reference your WSDL or the describe call for the appropriate names.",
    )


def _bare_value(text: str) -> object:
    lowered = text.lower()
    if lowered in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[lowered]
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


def parse_soql(soql: str) -> Soql:
    """Parse ``SELECT f[, f…] | COUNT() FROM Object [WHERE f = v [AND …]]
    [ORDER BY f [ASC|DESC]] [LIMIT n]``.

    Raises:
        RestError: ``MALFORMED_QUERY``, ``INVALID_TYPE`` or ``INVALID_FIELD``.
    """
    match = _SOQL_RE.match(soql)
    if not match:
        token = soql.strip().split(" ", 1)[0] if soql.strip() else "<EOF>"
        raise RestError(400, "MALFORMED_QUERY", f"unexpected token: '{token}'")
    spec = SCHEMAS.get(match.group("object").lower())
    if spec is None:
        raise RestError(
            400,
            "INVALID_TYPE",
            f"sObject type '{match.group('object')}' is not supported. If you are "
            "attempting to use a custom object, be sure to append the '__c' after the "
            "entity name. Please reference your WSDL or the describe call for the "
            "appropriate names.",
        )
    raw_fields = [f.strip() for f in match.group("fields").split(",")]
    count = [f.lower().replace(" ", "") for f in raw_fields] == ["count()"]
    names: list[str] = []
    if not count:
        for raw in raw_fields:
            found = spec.field(raw)
            if found is None:
                raise _invalid_field(raw, spec)
            names.append(found.name)
    where: list[tuple[str, str, object]] = []
    if match.group("where"):
        for part in re.split(r"(?i)\s+and\s+", match.group("where")):
            cond = _CONDITION_RE.match(part)
            if not cond:
                raise RestError(
                    400, "MALFORMED_QUERY", f"unexpected token: '{part.strip()}'"
                )
            found = spec.field(cond.group("field"))
            if found is None:
                raise _invalid_field(cond.group("field"), spec)
            text = cond.group("text")
            value: object = (
                text.replace("\\'", "'")
                if text is not None
                else _bare_value(cond.group("bare"))
            )
            if found.type in ("id", "reference") and isinstance(value, str):
                value = valid_id(value) or value
            where.append((found.name, cond.group("op"), value))
    order = match.group("order")
    order_field = None
    if order:
        found = spec.field(order)
        if found is None:
            raise _invalid_field(order, spec)
        order_field = found.name
    limit = match.group("limit")
    return Soql(
        spec=spec,
        fields=tuple(names),
        count=count,
        where=tuple(where),
        order_by=order_field,
        descending=(match.group("dir") or "").lower() == "desc",
        limit=int(limit) if limit is not None else None,
    )


def run_query(data: OrgRecords, query: Soql) -> list[dict[str, Any]]:
    """The rows of ``query`` (whole rows; the caller projects the fields)."""
    rows = [
        row
        for row in data.rows[query.spec.name].values()
        if all(
            (row.get(name) == value) == (op == "=") for name, op, value in query.where
        )
    ]
    if query.order_by is not None:
        key = query.order_by
        rows.sort(
            key=lambda r: (r.get(key) is None, str(r.get(key) or "")),
            reverse=query.descending,
        )
    if query.limit is not None:
        rows = rows[: query.limit]
    return rows
