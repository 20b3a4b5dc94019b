"""A corpus of override values of every kind Hydra's grammar has, for differential tests
against the installed hydra-core (written for yanex, after the kinds Hydra's own parser tests
cover: numbers in every spelling, bools, null, quoted and unquoted strings with escapes and
unicode, lists, dicts, interpolations, resolvers, functions, sweeps, commas, whitespace)."""

from __future__ import annotations

# One value per line, as typed after `x=`; a line is stripped of its newline only.
SCALARS = r"""
0
1
-1
+1
007
10_0
1_000_000
123456789012345678901234567890
-0
0.0
.5
5.
-3.14
+2.5
3.1_4
1e3
1E3
1e-3
1.e5
-1.5e+2
10e0
1_000.5
inf
-inf
+inf
INF
Inf
nan
NaN
-nan
true
True
TRUE
tRuE
false
False
FALSE
null
NULL
Null
abc
abc123
abc-123
a_b
_private
a.b.c
value-1.0
value-true
123abc
1.5abc
yes
no
on
off
0x10
0o17
0b101
1:30
12:30:45
2024-01-01
/data/set-1
./rel/path
../up
c:\foo\a-b.txt
$HOME
a%b
a*b
a@b
a?b
a|b
a+b
-flag
~tilde
a b c
a	b
 padded
a\,b
a\ b
a\=b
a\:b
a\(b\)
a\[b\]
a\{b\}
a\\b
trailing\\
'abc'
"abc"
''
""
'a b'
'a,b'
'a=b'
'a:b'
'it\'s'
"say \"hi\""
'\\'
'a\\'
'a\\\\'
'back\slash'
'é'
"שלום"
'😀'
'null'
'1'
'1.5'
'true'
'inf'
'[1,2]'
'{a: 1}'
'  spaced  '
'tab	in'
"mixed 'quotes'"
'${y}'
'\${y}'
'x-${y}'
???
'???'
é
café
a b=c
a=b
(
)
'open
"open
abc'
=
"""

CONTAINERS = r"""
[]
[1]
[1,2,3]
[ 1 , 2 ]
[a, 'b c']
[[1],[2,[3]]]
[null, true, 1.5]
[{a: 1}]
['[a,b]']
[1,
[1,2
[a b]
{}
{a: 1}
{a: [1, 2]}
{a: {b: c}}
{1: a}
{1.5: a, true: b}
{a b: c}
{ a : 1 }
{a: null}
{a\:b: 1}
{'a': 1}
{a: 1,
{a}
{a: 'x, y', b: "z"}
"""

INTERPOLATIONS = r"""
${y}
${d.a}
${d}
x-${y}
${y}-${d.a}
${oc.env:HOME}
${oc.env:YANEX_TEST_NOT_SET,fallback}
${oc.env:YANEX_TEST_NOT_SET}
${oc.decode:'[1, 2]'}
${oc.decode:'{a: 1}'}
${oc.decode:'3.5'}
${oc.decode:null}
${oc.select:d.a,0}
${oc.select:nope,0}
${oc.dict.keys:d}
${oc.dict.values:d}
${now:%Y}
${python_version:major}
${nope}
${d.nope}
${undefined_resolver:1}
${y
"""

FUNCTIONS = r"""
int(1.5)
int('10')
int(true)
float(1)
float('1e3')
str(1)
str(1.5)
str(true)
str([1, 2])
bool('true')
bool(0)
int({a: 1.5})
float(float(1))
sort([3, 1, 2])
sort([3, 1, 2], reverse=true)
sort(list=[b, a])
shuffle([1])
shuffle(list=[2])
int('x')
bool('maybe')
int()
nosuch(1)
"""

SWEEPS = r"""
1,2
a , b
1,2,3
[1,2],[3]
choice(1)
choice(1, 2)
choice(a, 'b c')
range(3)
range(1, 4)
range(0, 1, 0.25)
range(start=1, stop=3)
interval(0, 1)
glob(*)
sort(3, 1, 2)
shuffle(1, 2)
int(2, 1, 0)
str(choice(1, 2))
tag(a, choice(1, 2))
list(1, 2)
linspace(0, 1, 3)
"""


def _lines(block: str) -> list[str]:
    return [line for line in block.split("\n")[1:-1]]


def corpus() -> list[tuple[str, str]]:
    """``(kind, value text)`` pairs: every scalar alone, in a list and in a dict, and the
    containers, interpolations, functions and sweeps as written."""
    found: list[tuple[str, str]] = []
    for text in _lines(SCALARS):
        found.append(("scalar", text))
        found.append(("in a list", f"[{text}]"))
        found.append(("in a dict", f"{{k: {text}}}"))
    found += [("container", text) for text in _lines(CONTAINERS)]
    found += [("interpolation", text) for text in _lines(INTERPOLATIONS)]
    found += [("function", text) for text in _lines(FUNCTIONS)]
    found += [("sweep", text) for text in _lines(SWEEPS)]
    return list(dict.fromkeys(found))


# Sweeps with -m: each is expanded by yanex and by Hydra's own sweeper, then composed.
MULTIRUN_SWEEPS = [
    "x=1,2,3",
    "x=a,'b c',null",
    "x=[1,2],[3]",
    "x=choice(1, 2)",
    "x=choice({a: 1}, [2, 'c d'])",
    "x=range(4)",
    "x=range(1, 10, 3)",
    "x=range(start=2, stop=6)",
    "x=range(5, 0, -2)",
    "x=sort(3, 1, 2)",
    "x=sort(choice(b, c, a), reverse=true)",
    "x=sort(range(3, 0, -1))",
    "x=int(2, 1, 0)",
    "x=float(range(1, 3))",
    "x=str(choice(1, true, 1.5))",
    "x=bool(choice(0, 1))",
    "x=tag(fast, choice(1, 2))",
    "x=shuffle(1, 2, 3, 4)",
    "x=shuffle(range(5))",
    "x=${y},${d.a}",
]

# Every sweep function of the grammar (Hydra's and yanex's list/linspace/logspace) as a value of
# `x`, and the values it gives, in order, typed (shuffle's order is the seed's: compared as a
# set). tests/test_sweeps_everywhere.py writes each one in every way in; the differential test
# compares the command line with Hydra's sweeper and a config value with Hydra's parser.
SWEEP_FUNCTIONS: list[tuple[str, list[object]]] = [
    ("list(1, 2.5, adam)", [1, 2.5, "adam"]),
    ("choice(1, '2', true)", [1, "2", True]),
    ("range(3)", [0, 1, 2]),
    ("range(start=1, stop=8, step=3)", [1, 4, 7]),
    ("range(0, 1, 0.25)", [0.0, 0.25, 0.5, 0.75]),
    ("linspace(0, 1, 3)", [0.0, 0.5, 1.0]),
    ("logspace(0, 2, 3)", [1, 10, 100]),
    ("sort(3, 1, 2)", [1, 2, 3]),
    ("sort(choice(b, c, a), reverse=true)", ["c", "b", "a"]),
    # Hydra 1.3.8 gives 3, 1, -1; fixed upstream (hydra PR #3219, whose test expects 4, 2, 0)
    ("sort(range(0, 5, 2), reverse=true)", [4, 2, 0]),
    ("sort(range(4, -1, -2))", [0, 2, 4]),
    ("shuffle(1, 2, 3)", [1, 2, 3]),
    ("int(2.5, 1.7)", [2, 1]),
    ("float(range(2))", [0.0, 1.0]),
    ("str(choice(1, true))", ["1", "true"]),
    ("bool(choice(0, 1))", [False, True]),
    ("tag(fast, choice(a, b))", ["a", "b"]),
]
