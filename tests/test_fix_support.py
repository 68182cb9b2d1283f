"""What a correct fix must preserve, shared by the fix tests.

:func:`canonical` describes a loaded network by what it computes, not how the
file spells it: layers (type, parameters, inferred shapes) wired by *dataflow*
(each bottom is "output i of layer L" or "input X"), the inputs and the
outputs.  Blob names disappear, except the inputs' and outputs' names.

:func:`apply_changes` applies the :class:`~caffe2ncs.rules.base.Change` list
that the applied fixes declared to the description of the original network,
so that ``apply_changes(canonical(before), applied) == canonical(after)``
holds exactly when a fix did what it said and nothing else.
"""

from __future__ import annotations

import copy
from collections import Counter

from caffe2ncs.model.frozen import unwrap
from caffe2ncs.model.loader import loads
from caffe2ncs.model.schema import is_repeated


def canonical(net) -> dict:
    seen: Counter = Counter()
    keys = []
    for layer in net.layers:
        seen[layer.name] += 1
        keys.append(layer.name if seen[layer.name] == 1 else f"{layer.name}#{seen[layer.name]}")
    records = []
    for layer, key in zip(net.layers, keys):
        param = copy.deepcopy(unwrap(layer.param))
        for name in ("name", "bottom", "top", "type"):
            param.ClearField(name)
        refs = []
        for j, bottom in enumerate(layer.bottoms):
            i = net.bottom_producers[layer.index][j]
            if i >= 0:
                producer = net.layers[i]
                refs.append((keys[i], producer.tops.index(bottom)))
            else:
                refs.append(("<input>" if i == -1 else "<none>", bottom))
        shapes = net.layer_shapes[layer.index]
        records.append({"key": key, "type": layer.type, "param": param, "inputs": refs,
                        "in": tuple(shapes.inputs), "out": tuple(shapes.outputs)})
    outputs = []
    for blob in net.outputs:
        writers = [i for i, layer in enumerate(net.layers) if blob in layer.tops]
        if writers:
            i = writers[-1]
            outputs.append((keys[i], net.layers[i].tops.index(blob)))
        else:
            outputs.append(("<input>", blob))
    return {
        "inputs": [(spec.name, spec.shape) for spec in net.inputs],
        "layers": records,
        "outputs": outputs,
        "output_names": list(net.outputs),
        "reshaped_from": None,
    }


def _ref_map(desc: dict, fn) -> None:
    for rec in desc["layers"]:
        rec["inputs"] = [fn(r) for r in rec["inputs"]]
    desc["outputs"] = [fn(r) for r in desc["outputs"]]


def _index(desc: dict, key: str) -> int:
    for i, rec in enumerate(desc["layers"]):
        if rec["key"] == key:
            return i
    raise AssertionError(f"a fix declared a change to layer {key!r}, which does not exist")


def _set_param(param, path: str, value) -> None:
    *parents, last = path.split(".")
    msg = param
    for p in parents:
        msg = getattr(msg, p)
    field = msg.DESCRIPTOR.fields_by_name[last]
    if value is None:
        msg.ClearField(last)
    elif is_repeated(field):
        msg.ClearField(last)
        getattr(msg, last).append(value)
    else:
        setattr(msg, last, value)


def apply_changes(desc: dict, applied) -> dict:
    desc = copy.deepcopy(desc)
    for fix in applied:
        for change in fix.changes:
            kind, key, value = change.kind, change.layer, change.value
            if kind == "remove-layer":
                i = _index(desc, key)
                rec = desc["layers"].pop(i)
                first = rec["inputs"][0] if rec["inputs"] else None
                _ref_map(desc, lambda r, key=key, first=first: first if r[0] == key else r)
            elif kind == "layer-to-input":
                i = _index(desc, key)
                rec = desc["layers"].pop(i)
                desc["inputs"].append((value, rec["out"][0]))
                _ref_map(desc, lambda r, key=key, value=value:
                         ("<input>", value) if r[0] == key else r)
            elif kind == "rename-layer":
                desc["layers"][_index(desc, key)]["key"] = value
                _ref_map(desc, lambda r, key=key, value=value: (value, r[1]) if r[0] == key else r)
            elif kind == "retype-layer":
                desc["layers"][_index(desc, key)]["type"] = value
            elif kind == "set-param":
                path, new = value
                _set_param(desc["layers"][_index(desc, key)]["param"], path, new)
            elif kind == "set-batch":
                old = {shape[0] for _, shape in desc["inputs"] if shape}
                assert len(old) == 1, "set-batch with inputs of different batches"
                (old,) = old

                def rebatch(shape, old=old, new=value):
                    if shape is None or not shape or shape[0] != old:
                        return shape
                    return (new, *shape[1:])

                desc["inputs"] = [(n, rebatch(s)) for n, s in desc["inputs"]]
                for rec in desc["layers"]:
                    rec["in"] = tuple(rebatch(s) for s in rec["in"])
                    rec["out"] = tuple(rebatch(s) for s in rec["out"])
            elif kind == "flatten-concat":
                outer = desc["layers"][_index(desc, key)]
                inner = desc["layers"][_index(desc, value)]
                new_inputs, new_in = [], []
                for ref, shape in zip(outer["inputs"], outer["in"]):
                    if ref == (value, 0):
                        new_inputs.extend(inner["inputs"])
                        new_in.extend(inner["in"])
                    else:
                        new_inputs.append(ref)
                        new_in.append(shape)
                outer["inputs"], outer["in"] = new_inputs, tuple(new_in)
            elif kind == "rename-input":
                old, new = value
                desc["inputs"] = [(new if n == old else n, s) for n, s in desc["inputs"]]
                _ref_map(desc, lambda r, old=old, new=new:
                         ("<input>", new) if r == ("<input>", old) else r)
                desc["output_names"] = [new if n == old else n for n in desc["output_names"]]
            elif kind == "rename-output":
                old, new = value
                assert old in desc["output_names"], f"{old!r} is not an output"
                desc["output_names"] = [new if n == old else n for n in desc["output_names"]]
            elif kind == "reshape":
                i = _index(desc, key)
                current = desc["reshaped_from"]
                desc["reshaped_from"] = i if current is None else min(i, current)
            else:  # pragma: no cover - a new kind needs support here
                raise AssertionError(f"unknown change kind {kind!r}")
    return desc


def comparable(desc: dict, reshaped_from: int | None = None) -> dict:
    """``desc`` with protobuf messages as text (and shapes dropped from the first
    layer a fix declared as reshaping)."""
    from google.protobuf import text_format

    out = {k: v for k, v in desc.items() if k != "reshaped_from"}
    layers = []
    for i, rec in enumerate(desc["layers"]):
        rec = dict(rec, param=text_format.MessageToString(rec["param"]))
        if reshaped_from is not None and i >= reshaped_from:
            rec["in"] = rec["out"] = "(reshaped by a fix)"
        layers.append(rec)
    out["layers"] = layers
    if reshaped_from is not None:
        out["inputs"] = [(n, "(reshaped)") for n, _ in desc["inputs"]]
    return out


def assert_same_network(before_text: str, after_text: str, applied) -> None:
    before = canonical(loads(before_text, strict=False))
    after = canonical(loads(after_text, strict=False))
    expected = apply_changes(before, applied)
    cut = expected["reshaped_from"]
    exp, got = comparable(expected, cut), comparable(after, cut)
    assert [r["key"] for r in got["layers"]] == [r["key"] for r in exp["layers"]]
    for e, g in zip(exp["layers"], got["layers"]):
        assert g == e, f"layer {e['key']!r} differs"
    assert got == exp


def comment_lines(text: str) -> Counter:
    """Every comment of the file (the text after '#', stripped), counted."""
    from caffe2ncs.model.textformat import parse

    return Counter(c.strip() for _, c in parse(text).comments())
