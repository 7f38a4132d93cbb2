"""The Python package against the C header: include/pwcache.h is read with regular expressions
and compared with what python/pwcache/_lib.py declares (each function's name, argument count,
argument and return types, a status always checked, the log callback) and what _errors.py and
the logging bridge map (each pw_status and pw_log_level value).
A C function or status added, renumbered or changed in src/ffi/ fails here until the Python
package follows."""

import ctypes
import re
from pathlib import Path

import pwcache
from pwcache import _errors, _lib

HEADER = Path(__file__).resolve().parents[2] / "include" / "pwcache.h"

# Functions of the header that the Python package deliberately does not wrap, each with the
# reason. Empty: Python wraps the whole C API. A new C function fails
# test_every_header_function_is_wrapped until _lib.py declares it or it is listed here, e.g.
#   "pw_example": "C-only: takes a FILE *, which ctypes cannot pass portably",
NOT_WRAPPED: dict[str, str] = {}

# The exception class of a status whose name is not the CamelCase of the constant's suffix.
EXCEPTION_NAMES = {
    "PW_IO_ERROR": "PwIOError",  # `IOError` is a builtin name (an alias of OSError)
}

# The ctypes types that may stand for each C type of the header (spaces around `*` removed).
# Opaque handles and strings the library allocates travel as void pointers: Python frees the
# strings itself (pw_string_free) and never looks inside a handle.
_void_pp = ctypes.POINTER(ctypes.c_void_p)
CTYPES = {
    "void": {None},
    "enum pw_status": {ctypes.c_int},
    "bool": {ctypes.c_bool},
    "const char*": {ctypes.c_char_p},
    "char*": {ctypes.c_void_p},
    "void*": {ctypes.c_void_p},
    "struct pw_cache*": {ctypes.c_void_p},
    "struct pw_ttl*": {ctypes.c_void_p},
    "const struct pw_ttl*": {ctypes.c_void_p},
    "char**": {_void_pp},
    "struct pw_cache**": {_void_pp},
    "struct pw_ttl**": {_void_pp},
    "uint64_t*": {ctypes.POINTER(ctypes.c_uint64)},
    "bool*": {ctypes.POINTER(ctypes.c_bool)},
    "int64_t": {ctypes.c_int64},
    "double": {ctypes.c_double},
    "pw_log_fn": {_lib.LOG_FN},
    "pw_log_level": {ctypes.c_uint, ctypes.c_int},
    "enum pw_log_level": {ctypes.c_uint, ctypes.c_int},
    "pw_tier": {ctypes.c_uint, ctypes.c_int},
    "enum pw_tier": {ctypes.c_uint, ctypes.c_int},
}


def _code() -> str:
    """The header without its comments (they mention names and parentheses freely)."""
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _c_type(text: str) -> str:
    return re.sub(r"\s*\*\s*", "*", " ".join(text.split())).strip()


def header_enums() -> dict[str, dict[str, int]]:
    """Every enum of the header: its name -> {constant: value}."""
    enums = {}
    for name, body in re.findall(r"typedef\s+enum\s+(\w+)\s*\{(.*?)\}\s*\w+\s*;", _code(), re.S):
        items = [item.strip() for item in body.split(",") if item.strip()]
        values = {}
        for item in items:
            match = re.fullmatch(r"(\w+)\s*=\s*(-?\d+)", item)
            assert match, f"enum {name}: cannot read {item!r} (each constant needs its value)"
            values[match[1]] = int(match[2])
        enums[name] = values
    return enums


def header_functions() -> dict[str, tuple[str, list[str]]]:
    """Every function the header declares: its name -> (return type, [parameter types])."""
    code = _code()
    functions = {}
    pattern = r"^([A-Za-z_][\w \t*]*?)\b(pw_\w+)\s*\(([^()]*)\)\s*;"
    for ret, name, params in re.findall(pattern, code, re.M):
        params = " ".join(params.split())
        types = []
        if params not in ("", "void"):
            for param in params.split(","):
                match = re.fullmatch(r"(.*?)\b(\w+)", param.strip())
                assert match, f"{name}: cannot read the parameter {param!r}"
                types.append(_c_type(match[1]))
        functions[name] = (_c_type(ret), types)
    # Every `pw_...(` of the header is a declaration read above: a declaration the pattern did
    # not understand fails here instead of being left out of the comparison.
    called = set(re.findall(r"\b(pw_\w+)\s*\(", code))
    assert called == set(functions), f"declarations not read: {sorted(called - set(functions))}"
    return functions


def python_functions() -> dict[str, object]:
    """Every C function _lib.py declares: its C name -> the ctypes function."""
    declared = {}
    for attribute, value in vars(_lib).items():
        if isinstance(value, _lib.lib._FuncPtr):
            assert value.__name__ == attribute, f"_lib.{attribute} is C's {value.__name__}"
            declared[value.__name__] = value
    return declared


def test_the_header_is_read():
    enums = header_enums()
    functions = header_functions()
    assert enums["pw_status"]["PW_OK"] == 0, "_lib._check takes 0 for success"
    assert "pw_cache_new" in functions and "pw_version" in functions
    assert len(python_functions()) > 0


def test_every_status_is_mapped_with_its_value():
    statuses = header_enums()["pw_status"]
    problems = []
    for constant, value in statuses.items():
        if constant == "PW_OK":
            if value in _errors._BY_STATUS:
                problems.append(f"PW_OK ({value}) is mapped to an exception")
            continue
        words = constant.removeprefix("PW_").split("_")
        class_name = EXCEPTION_NAMES.get(constant, "".join(w.capitalize() for w in words))
        cls = getattr(_errors, class_name, None)
        if cls is None:
            problems.append(f"{constant} = {value}: _errors.py has no class {class_name}")
        elif cls.status != value:
            problems.append(f"{constant} = {value}: {class_name}.status is {cls.status}")
        elif _errors._BY_STATUS.get(value) is not cls:
            mapped = _errors._BY_STATUS.get(value)
            problems.append(f"{constant} = {value}: _BY_STATUS[{value}] is {mapped}")
    for value, cls in _errors._BY_STATUS.items():
        if value not in statuses.values():
            problems.append(f"_BY_STATUS maps {value} ({cls.__name__}), which is no pw_status")
    assert not problems, "\n".join(problems)


def test_every_function_python_declares_exists_with_its_arity():
    header = header_functions()
    problems = []
    for name, fn in sorted(python_functions().items()):
        if name not in header:
            problems.append(f"{name}: declared in _lib.py, not in the header")
        elif len(fn.argtypes) != len(header[name][1]):
            problems.append(
                f"{name}: {len(fn.argtypes)} arguments in _lib.py, {len(header[name][1])} in the "
                f"header ({', '.join(header[name][1])})"
            )
    assert not problems, "\n".join(problems)


def test_argument_and_return_types_match():
    header = header_functions()
    problems = []
    for name, fn in sorted(python_functions().items()):
        if name not in header or len(fn.argtypes) != len(header[name][1]):
            continue  # reported by the arity test
        ret, params = header[name]
        if ret == "enum pw_status" and fn.errcheck is not _lib._check:
            problems.append(f"{name} returns a pw_status that Python does not check (_check)")
        pairs = [("returns", ret, fn.restype)]
        for i, (c_type, py_type) in enumerate(zip(params, fn.argtypes)):
            pairs.append((f"argument {i + 1}", c_type, py_type))
        for what, c_type, py_type in pairs:
            if c_type not in CTYPES:
                problems.append(f"{name} {what}: C type {c_type!r} is not in CTYPES: add it")
            elif py_type not in CTYPES[c_type]:
                shown = getattr(py_type, "__name__", py_type)
                problems.append(f"{name} {what}: C {c_type!r}, Python {shown}")
    assert not problems, "\n".join(problems)


def test_every_header_function_is_wrapped():
    header = header_functions()
    declared = python_functions()
    missing = sorted(set(header) - set(declared) - set(NOT_WRAPPED))
    assert not missing, f"in the header, neither declared in _lib.py nor in NOT_WRAPPED: {missing}"
    stale = sorted(name for name in NOT_WRAPPED if name not in header or name in declared)
    assert not stale, f"NOT_WRAPPED lists functions that are gone or wrapped: {stale}"


def test_log_callback_and_levels_match():
    pattern = r"typedef\s+([\w \t*]+?)\s*\(\s*\*\s*pw_log_fn\s*\)\s*\(([^()]*)\)\s*;"
    typedef = re.search(pattern, _code())
    assert typedef, "the header declares pw_log_fn"
    params = [_c_type(re.fullmatch(r"(.*?)\b\w+", p.strip())[1]) for p in typedef[2].split(",")]
    assert _lib.LOG_FN._restype_ in CTYPES[_c_type(typedef[1])]
    assert len(_lib.LOG_FN._argtypes_) == len(params), f"pw_log_fn takes {params}"
    for c_type, py_type in zip(params, _lib.LOG_FN._argtypes_):
        assert py_type in CTYPES[c_type], f"pw_log_fn: C {c_type!r}, Python {py_type.__name__}"
    levels = header_enums()["pw_log_level"]
    assert set(pwcache._LEVELS) == set(levels.values()), (
        f"pwcache._LEVELS maps {sorted(pwcache._LEVELS)}, the header's levels are {levels}"
    )
