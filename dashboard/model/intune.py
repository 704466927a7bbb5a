"""Reconciling ConfigMgr's device records with Intune's, vectorised over both sides.

Pure: ``reconcile`` takes the classified ConfigMgr frame and Intune's Windows records (the
frame an Intune source yields, Graph property names) and returns the columns the pipeline adds
to the device frame; ``intune_only_rows`` finds Intune's co-managed records that no ConfigMgr
record matches; ``intune_summary`` counts them for the summary's ``intune`` object. The rules
(docs/usage.md, "ConfigMgr and Intune"):

- A ConfigMgr record and an Intune record match when their Entra device IDs are equal (GUIDs
  compared ignoring case and braces; the all-zero GUID is no ID). Several Intune records with
  one ID (re-enrollment leaves them): the most recently synced decides, the others still count
  as matched.
- A ConfigMgr record without an ID matches by name when its name, ignoring case, is unique among
  its site's records, and exactly one Intune record has that name and that record is matched by
  no ConfigMgr record through its ID.
- Stale: last sync older than ``stale_days`` days before the ConfigMgr side's "as of" (exactly
  ``stale_days`` old is current; never synced is stale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .summary_types import IntuneSummary, PastIntune

RECONCILIATION_STATES = ("agree", "missing", "stale", "not-comanaged-in-intune", "intune-ahead")
MATCH_KINDS = ("id", "name")
# Intune's complianceState names, in the order the summary lists them; ``no_record`` is ours:
# a co-managed ConfigMgr record without a current Intune record.
COMPLIANCE_STATES = (
    "compliant",
    "noncompliant",
    "inGracePeriod",
    "conflict",
    "error",
    "unknown",
    "configManager",
    "no_record",
)
NO_RECORD = "no_record"
# The states a compliance rule flags: the device is not (yet) compliant or could not be
# evaluated.
NOT_COMPLIANT = ("noncompliant", "inGracePeriod", "conflict", "error")
# managementAgent names meaning "co-managed" in Intune (Graph enum values 10 and 11).
COMANAGED_AGENTS = ("configurationManagerClientMdm", "configurationManagerClientMdmEas")
COMPLIANCE_BIT = 2  # MDMWorkloads bit of the compliance policies workload
COLUMNS = ("intune_state", "intune_match", "intune_row", "intune_compliance", "authority_mismatch")
# History metric names of the counts ``intune_summary`` returns.
METRICS = (
    *(f"intune.reconciliation.{state}" for state in RECONCILIATION_STATES),
    *(f"intune.compliance.{state}" for state in COMPLIANCE_STATES),
    "intune.intune_only",
    "intune.authority_mismatch",
    "intune.matched",
)

NO_IDS = ("", "00000000-0000-0000-0000-000000000000", "0" * 32)  # none, the all-zero GUID


def normalise_guids(values: pd.Series) -> pa.Array:
    """Entra device IDs as lower-case text without braces or spaces; null when empty or the
    all-zero GUID (what ConfigMgr stores for a device that never joined)."""
    array = pa.array(values.astype("str"), type=pa.string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    # Trimming and equality, not regular expressions: ten times faster on a million IDs.
    text = pc.utf8_lower(pc.utf8_trim(array, characters="{} \t\r\n"))
    return pc.if_else(pc.is_in(text, value_set=pa.array(NO_IDS)), None, text)


_HYPHENS = np.array([8, 13, 18, 23])
_DIGIT_RUNS = ((0, 8), (9, 13), (14, 18), (19, 23), (24, 36))  # 8-4-4-4-12 hex digits
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _guid_words(array: pa.Array) -> np.ndarray | None:
    """Normalised GUIDs as rows of two uint64 (zeros for nulls), or None when some value is
    not a well-formed 36-character GUID."""
    n = len(array)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    lengths = pc.fill_null(pc.binary_length(array), 36).to_numpy(zero_copy_only=False)
    if n == 0 or (lengths != 36).any():
        return None if n else np.zeros((0, 2), dtype=np.uint64)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + n + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    rows = np.flatnonzero(valid)
    if (np.diff(offsets) == np.where(valid, 36, 0)).all():
        # Null slots hold no bytes (as Arrow writes them): the IDs are one (k, 36) block.
        chars = data[offsets[0] : offsets[-1]].reshape(len(rows), 36)
    else:
        chars = data[offsets[rows][:, None] + np.arange(36)]
    if len(rows) and (chars[:, _HYPHENS] != ord("-")).any():
        return None
    digits = np.concatenate([chars[:, a:b] for a, b in _DIGIT_RUNS], axis=1)
    # Arithmetic, not a lookup table: indexing with 32 million bytes would widen each to 8.
    hexadecimal = ((digits >= 48) & (digits <= 57)) | ((digits >= 97) & (digits <= 102))
    if not hexadecimal.all():
        return None
    nibbles = (digits & 0x0F) + 9 * (digits >> 6)
    words = np.zeros((n, 2), dtype=np.uint64)
    words[rows] = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2]).view(np.uint64)
    return words


def _id_codes(left: pa.Array, right: pa.Array) -> tuple[np.ndarray, np.ndarray, int]:
    """``_codes`` for normalised GUIDs: well-formed ones are read as 128-bit numbers and
    hashed to 64 bits (a million IDs in tens of milliseconds, where hashing the text takes
    about a second); any other text, or a hash collision, takes the text path."""
    left_words, right_words = _guid_words(left), _guid_words(right)
    if left_words is None or right_words is None:
        return _codes(left, right)
    both: np.ndarray = np.concatenate([left_words, right_words])
    valid = np.concatenate([a.is_valid().to_numpy(zero_copy_only=False) for a in (left, right)])
    with np.errstate(over="ignore"):
        hashed = both[:, 0] ^ (both[:, 1] * _MIX)
    codes, uniques = pd.factorize(np.where(valid, hashed.view(np.int64), -1))
    first = np.full(len(uniques), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    if not (both[first[codes]] == both).all():  # two IDs with one hash: exact path
        return _codes(left, right)
    codes = np.where(valid, codes, -1).astype(np.int64)
    return codes[: len(left)], codes[len(left) :], len(uniques)


def _lowered(values: pd.Series) -> pa.Array:
    """Names ignoring case; empty names are no names."""
    array = pa.array(values.astype("str"), type=pa.string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    lowered = pc.utf8_lower(array)
    return pc.if_else(pc.equal(lowered, ""), None, lowered)


def _codes(left: pa.Array, right: pa.Array) -> tuple[np.ndarray, np.ndarray, int]:
    """One integer per distinct value across both arrays (-1 for null), by one hash pass."""
    encoded = pc.dictionary_encode(pa.concat_arrays([left, right]))
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes[: len(left)], codes[len(left) :], len(encoded.dictionary)


def _stamps(values: pd.Series) -> np.ndarray:
    """Datetimes as int64 microseconds, NaT as the smallest integer (the oldest)."""
    dates = values.to_numpy(dtype="datetime64[us]")
    return np.where(np.isnat(dates), np.iinfo(np.int64).min, dates.view(np.int64))


def _naive_utc(as_of: pd.Timestamp) -> np.datetime64:
    stamp = pd.Timestamp(as_of)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    naive: np.datetime64 = stamp.to_datetime64().astype("datetime64[us]")
    return naive


def _match(
    devices: pd.DataFrame, intune: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(deciding Intune row per ConfigMgr record or -1, matched by name, Intune rows matched).

    No loop over records: IDs and names of both sides are hashed together into integer codes,
    then grouped with sorts and ``bincount``s."""
    n, m = len(devices), len(intune)
    row = np.full(n, -1, dtype=np.int64)
    by_name = np.zeros(n, dtype=bool)
    matched = np.zeros(m, dtype=bool)
    if n == 0 or m == 0:
        return row, by_name, matched
    cm_id, in_id, ids = _id_codes(
        normalise_guids(devices["AADDeviceID"]), normalise_guids(intune["azureADDeviceId"])
    )

    # By ID: per ID the most recently synced record decides (then the most recently enrolled,
    # then the later row, so that the choice is stable).
    with_id = np.flatnonzero(in_id >= 0)
    order = with_id[
        np.lexsort(
            (
                with_id,
                _stamps(intune["enrolledDateTime"])[with_id],
                _stamps(intune["lastSyncDateTime"])[with_id],
                in_id[with_id],
            )
        )
    ]
    sorted_ids = in_id[order]
    last = np.r_[sorted_ids[1:] != sorted_ids[:-1], True] if len(order) else np.zeros(0, bool)
    deciding = np.full(ids + 1, -1, dtype=np.int64)  # slot ``ids``: no ID
    deciding[sorted_ids[last]] = order[last]
    row = deciding[np.where(cm_id >= 0, cm_id, ids)]
    claimed = np.zeros(ids + 1, dtype=bool)
    claimed[cm_id[cm_id >= 0]] = True
    matched = claimed[np.where(in_id >= 0, in_id, ids)]

    # By name: a ConfigMgr record without an ID whose name is unique in its site, and the one
    # Intune record of that name, unless an ID match already took it. Only the records whose
    # names some candidate has take part (a set lookup first), so the hashing and grouping
    # cover those, not both sides whole.
    cm_lower, in_lower = _lowered(devices["Name"]), _lowered(intune["deviceName"])
    wanted = pc.unique(cm_lower.filter(pa.array(cm_id < 0)).drop_null())
    if not len(wanted):
        return row, by_name, matched
    cm_rows = np.flatnonzero(pc.is_in(cm_lower, value_set=wanted).to_numpy(zero_copy_only=False))
    in_rows = np.flatnonzero(pc.is_in(in_lower, value_set=wanted).to_numpy(zero_copy_only=False))
    cm_name, in_name, names = _codes(cm_lower.take(cm_rows), in_lower.take(in_rows))
    sites = (
        pd.factorize(devices["site"])[0].astype(np.int64)[cm_rows]
        if "site" in devices.columns
        else np.zeros(len(cm_rows), dtype=np.int64)
    )
    _keys, inverse, per_key = np.unique(
        sites * (names + 1) + cm_name, return_inverse=True, return_counts=True
    )
    site_unique = per_key[inverse] == 1
    per_name = np.bincount(in_name, minlength=names)
    only_row = np.full(names, -1, dtype=np.int64)
    only_row[in_name] = in_rows
    pick = (cm_id[cm_rows] < 0) & site_unique
    candidate, codes = cm_rows[pick], cm_name[pick]
    target = np.where(per_name[codes] == 1, only_row[codes], -1)
    ok = target >= 0
    ok[ok] = ~matched[target[ok]]
    row[candidate[ok]] = target[ok]
    by_name[candidate[ok]] = True
    matched[target[ok]] = True
    return row, by_name, matched


def _intune_comanaged(intune: pd.DataFrame) -> np.ndarray:
    column = intune["comanaged"] if "comanaged" in intune.columns else None
    if column is None:
        column = intune["managementAgent"].isin(COMANAGED_AGENTS)
    flags: np.ndarray = column.to_numpy(dtype=bool)
    return flags


def _compliance_codes(intune: pd.DataFrame) -> np.ndarray:
    """Each Intune record's complianceState as a code into COMPLIANCE_STATES; anything not
    listed counts as ``unknown``."""
    codes = pd.Index(COMPLIANCE_STATES[:-1]).get_indexer(intune["complianceState"].astype("str"))
    return np.where(codes < 0, COMPLIANCE_STATES.index("unknown"), codes).astype(np.int16)


def reconcile(
    devices: pd.DataFrame, intune_frame: pd.DataFrame, as_of: pd.Timestamp, stale_days: int
) -> pd.DataFrame:
    """The Intune columns of each ConfigMgr record, aligned with ``devices`` (``reconciled``
    without the Intune-only rows)."""
    return reconciled(devices, intune_frame, as_of, stale_days)[0]


def reconciled(
    devices: pd.DataFrame, intune_frame: pd.DataFrame, as_of: pd.Timestamp, stale_days: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """(the Intune columns of each ConfigMgr record, aligned with ``devices``; the Intune-only
    rows, as ``intune_only_rows``), from one matching of the two sides.

    ``intune_state`` (one reconciliation state, first match wins; NA for a record that does not
    claim enrollment and is not ahead), ``intune_match`` (``id``/``name``, NA without a match),
    ``intune_row`` (row of the deciding Intune record, -1 without), ``intune_compliance`` (for
    co-managed records: the deciding current record's complianceState, else ``no_record``; NA
    for the others) and ``authority_mismatch``.
    """
    n = len(devices)
    row, by_name, matched = _match(devices, intune_frame)
    has = row >= 0
    safe = np.where(has, row, 0)
    take = len(intune_frame) > 0
    sync = (
        intune_frame["lastSyncDateTime"].to_numpy(dtype="datetime64[us]")[safe]
        if take
        else np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    )
    age = _naive_utc(as_of) - sync
    limit = np.timedelta64(int(stale_days), "D").astype("timedelta64[us]")
    # NaT (never synced) compares False, so ``current`` is False: never synced is stale.
    current = has & ~np.isnat(sync) & (age <= limit)
    agent_comanaged = _intune_comanaged(intune_frame)[safe] if take else np.zeros(n, bool)
    claims = devices["MDMEnrolled"].to_numpy(dtype=float) == 1
    state = np.select(
        [
            claims & ~has,
            claims & ~current,
            claims & ~agent_comanaged,
            claims,
            current & agent_comanaged,
        ],
        [RECONCILIATION_STATES.index(s) for s in RECONCILIATION_STATES[1:4]]
        + [RECONCILIATION_STATES.index("agree"), RECONCILIATION_STATES.index("intune-ahead")],
        default=-1,
    )
    comanaged = devices["comanaged"].to_numpy(dtype=bool)
    record_state = _compliance_codes(intune_frame)[safe] if take else np.zeros(n, dtype=np.int16)
    compliance = np.where(
        comanaged,
        np.where(current, record_state, COMPLIANCE_STATES.index(NO_RECORD)),
        -1,
    )
    # Who evaluates compliance, inferred from the documented enum: with the workload's bit set,
    # Intune does, so "configManager" contradicts it; with it clear ConfigMgr does, so any
    # Intune verdict contradicts it. Unknown state or unknown bits say nothing.
    workloads = devices["MDMWorkloads"].to_numpy(dtype=float)
    known_bits = ~np.isnan(workloads)
    bit = (np.where(known_bits, workloads, 0).astype(np.int64) & COMPLIANCE_BIT) != 0
    by_configmgr = record_state == COMPLIANCE_STATES.index("configManager")
    checked = (
        comanaged & current & known_bits & (record_state != COMPLIANCE_STATES.index("unknown"))
    )
    mismatch = checked & np.where(bit, by_configmgr, ~by_configmgr)
    match = np.where(has, np.where(by_name, 1, 0), -1)
    columns = pd.DataFrame(
        {
            "intune_state": pd.Categorical.from_codes(
                state.astype(np.int16), categories=RECONCILIATION_STATES
            ),
            "intune_match": pd.Categorical.from_codes(
                match.astype(np.int16), categories=MATCH_KINDS
            ),
            "intune_row": row,
            "intune_compliance": pd.Categorical.from_codes(
                compliance.astype(np.int16), categories=COMPLIANCE_STATES
            ),
            "authority_mismatch": mismatch,
        },
        index=devices.index,
    )
    return columns, _only(intune_frame, matched)


def intune_only_rows(devices: pd.DataFrame, intune_frame: pd.DataFrame) -> np.ndarray:
    """Rows of ``intune_frame`` that Intune sees as co-managed and that match no ConfigMgr
    record, by ID or by name (stale or not)."""
    return _only(intune_frame, _match(devices, intune_frame)[2])


def _only(intune_frame: pd.DataFrame, matched: np.ndarray) -> np.ndarray:
    if not len(intune_frame):
        return np.zeros(0, dtype=np.int64)
    rows: np.ndarray = np.flatnonzero(_intune_comanaged(intune_frame) & ~matched)
    return rows


def _counts(column: pd.Series, kept: np.ndarray | None, keys: tuple[str, ...]) -> dict[str, int]:
    codes = column.cat.codes.to_numpy()
    if kept is not None:
        codes = codes[kept]
    tally = np.bincount(codes[codes >= 0].astype(np.intp), minlength=len(keys))
    categories = list(column.cat.categories)
    return {key: int(tally[categories.index(key)]) for key in keys}


def intune_summary(
    devices: pd.DataFrame,
    *,
    records: int,
    windows: int,
    dropped: int,
    intune_only: int,
    mask: np.ndarray | None = None,
) -> IntuneSummary:
    """The summary's ``intune`` object. ``devices`` carries the ``reconcile`` columns; ``mask``
    (a site or collection filter) narrows the ConfigMgr-side figures only: ``records``,
    ``windows``, ``dropped`` and ``intune_only`` describe the whole Intune source."""
    kept = None if mask is None else np.flatnonzero(mask)

    def values(name: str) -> np.ndarray:
        array: np.ndarray = devices[name].to_numpy()
        return array if kept is None else array[kept]

    has = values("intune_row") >= 0
    return {
        "records": int(records),
        "windows": int(windows),
        "dropped": int(dropped),
        "matched": int(np.count_nonzero(has)),
        "matched_by_name": int(
            np.count_nonzero(
                devices["intune_match"].cat.codes.to_numpy()[slice(None) if kept is None else kept]
                == MATCH_KINDS.index("name")
            )
        ),
        "reconciliation": _counts(devices["intune_state"], kept, RECONCILIATION_STATES),
        "intune_only": int(intune_only),
        "compliance": _counts(devices["intune_compliance"], kept, COMPLIANCE_STATES),
        "authority_mismatch": int(np.count_nonzero(values("authority_mismatch"))),
    }


def intune_metrics(intune: IntuneSummary | PastIntune) -> dict[str, int]:
    """The summary's ``intune`` object (or a stored day's) as history metrics (names in
    ``METRICS``)."""
    out = {f"intune.reconciliation.{k}": v for k, v in intune["reconciliation"].items()}
    out |= {f"intune.compliance.{k}": v for k, v in intune["compliance"].items()}
    out["intune.intune_only"] = intune["intune_only"]
    out["intune.authority_mismatch"] = intune["authority_mismatch"]
    out["intune.matched"] = intune["matched"]
    return out
