"""A checker for the subset of JSON Schema (draft 2020-12, as OpenAPI 3.1 uses it) that
openapi/openapi.json uses, so that the conformance tests need no Python package beyond
Debian's. A keyword it does not know raises UnknownKeyword instead of being ignored: a schema
it cannot read fully never passes silently.

    errors = Checker(document).errors(value, schema)   # [] when value conforms
"""

import datetime
import math
import re
import urllib.parse

# Keywords that only describe; they constrain nothing.
ANNOTATIONS = {"description", "title", "examples", "example", "default", "deprecated",
               "readOnly", "writeOnly", "$comment", "contentMediaType", "contentEncoding"}
KNOWN = ANNOTATIONS | {
    "$ref", "type", "enum", "const", "required", "properties", "additionalProperties",
    "minProperties", "items", "minItems", "maxItems", "uniqueItems", "minimum", "maximum",
    "minLength", "maxLength", "pattern", "format", "allOf", "anyOf", "oneOf", "not"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class UnknownKeyword(Exception):
    """The schema uses something this checker cannot check."""


def _is_type(value, t):
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    raise UnknownKeyword(f"type {t!r}")


def _format_ok(value, fmt):
    if fmt == "date-time":
        if not RFC3339.match(value):
            return False
        try:
            datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    if fmt in ("uri", "uri-reference"):
        if any(ord(c) <= 0x20 or ord(c) == 0x7f for c in value):
            return False
        try:
            parts = urllib.parse.urlsplit(value)
        except ValueError:
            return False
        return fmt == "uri-reference" or bool(parts.scheme)
    raise UnknownKeyword(f"format {fmt!r}")


def _same(a, b):
    """JSON equality: 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


class Checker:
    def __init__(self, document):
        self.doc = document

    def resolve(self, node):
        """Follows $ref (local JSON pointers only) until node is not a reference."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise UnknownKeyword(f"$ref {ref!r}: only local references are supported")
            if len(node) > 1 and set(node) - {"$ref"} - ANNOTATIONS:
                raise UnknownKeyword(f"$ref with siblings {sorted(node)}")
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            assert seen < 50, f"$ref loop at {ref}"
        return node

    def errors(self, value, schema, where="$"):
        """The ways value fails schema, as 'where: what' lines ([] when it conforms)."""
        schema = self.resolve(schema)
        if schema is True or schema == {}:
            return []
        if schema is False:
            return [f"{where}: no value is allowed here"]
        unknown = set(schema) - KNOWN
        if unknown:
            raise UnknownKeyword(f"{where}: schema keyword(s) {sorted(unknown)}")
        out = []
        types = schema.get("type")
        if types is not None:
            types = types if isinstance(types, list) else [types]
            if not any(_is_type(value, t) for t in types):
                return [f"{where}: {value!r:.80} is not of type {'/'.join(types)}"]
        if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
            out.append(f"{where}: {value!r:.80} is not one of {schema['enum']}")
        if "const" in schema and not _same(value, schema["const"]):
            out.append(f"{where}: {value!r:.80} is not {schema['const']!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(f"{where}: {value} < minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                out.append(f"{where}: {value} > maximum {schema['maximum']}")
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                out.append(f"{where}: shorter than {schema['minLength']}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append(f"{where}: longer than {schema['maxLength']}")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                out.append(f"{where}: {value!r:.80} does not match {schema['pattern']}")
            if "format" in schema and not _format_ok(value, schema["format"]):
                out.append(f"{where}: {value!r:.80} is not a {schema['format']}")
        if isinstance(value, list):
            if "minItems" in schema and len(value) < schema["minItems"]:
                out.append(f"{where}: fewer than {schema['minItems']} items")
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append(f"{where}: more than {schema['maxItems']} items")
            if schema.get("uniqueItems"):
                for i in range(len(value)):
                    if any(_same(value[i], value[j]) for j in range(i)):
                        out.append(f"{where}[{i}]: repeats an earlier item")
            if "items" in schema:
                for i, item in enumerate(value):
                    out += self.errors(item, schema["items"], f"{where}[{i}]")
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    out.append(f"{where}: required member {name!r} is missing")
            if "minProperties" in schema and len(value) < schema["minProperties"]:
                out.append(f"{where}: fewer than {schema['minProperties']} members")
            extra = schema.get("additionalProperties", True)
            for name, member in value.items():
                if name in props:
                    out += self.errors(member, props[name], f"{where}.{name}")
                elif extra is False:
                    out.append(f"{where}: member {name!r} is not allowed")
                elif extra is not True:
                    out += self.errors(member, extra, f"{where}.{name}")
        for i, sub in enumerate(schema.get("allOf", [])):
            out += self.errors(value, sub, f"{where}(allOf {i})")
        if "anyOf" in schema:
            branches = [self.errors(value, s, where) for s in schema["anyOf"]]
            if all(branches):
                out.append(f"{where}: matches none of anyOf: {branches}")
        if "oneOf" in schema:
            branches = [self.errors(value, s, where) for s in schema["oneOf"]]
            n = sum(1 for b in branches if not b)
            if n != 1:
                out.append(f"{where}: matches {n} of oneOf, not exactly one: {branches}")
        if "not" in schema and not self.errors(value, schema["not"], where):
            out.append(f"{where}: matches a schema it must not ({schema['not']})")
        return out

    def check_schema(self, schema, where="$"):
        """Raises UnknownKeyword if schema, or any schema inside it, uses a keyword or format
        this checker does not know (references are followed once each)."""
        self._walk(schema, where, set())

    def _walk(self, schema, where, seen):
        if isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                return
            seen.add(ref)
            schema = self.resolve(schema)
            where = ref
        if isinstance(schema, bool):
            return
        unknown = set(schema) - KNOWN
        if unknown:
            raise UnknownKeyword(f"{where}: schema keyword(s) {sorted(unknown)}")
        for t in (schema["type"] if isinstance(schema.get("type"), list)
                  else [schema["type"]] if "type" in schema else []):
            _is_type(None, t)
        if "format" in schema:
            _format_ok("", schema["format"])
        for name, sub in schema.get("properties", {}).items():
            self._walk(sub, f"{where}.{name}", seen)
        for key in ("items", "not", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                self._walk(schema[key], f"{where}/{key}", seen)
        for key in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(schema.get(key, [])):
                self._walk(sub, f"{where}/{key}/{i}", seen)
