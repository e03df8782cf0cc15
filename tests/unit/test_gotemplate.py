"""Go text/template and Docker `--format` behaviour of dockyard.gotemplate.

Expected outputs follow Go's documented text/template, fmt and encoding/json behaviour (many
cases mirror Go's own exec_test.go table) and the Docker CLI's formatter (templates.go,
formatter.go and its tabwriter: minwidth 10, padding 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from dockyard.gostr import go_quote
from dockyard.gotemplate import Template, TemplateError, format_rows, render, tabwrite
from dockyard.gotemplate.gofmt import format_value, sprintf
from dockyard.gotemplate.gojson import json_encode
from dockyard.gotemplate.table import tabwrite_text

DATA: dict[str, Any] = {
    "SI": [3, 4, 5],
    "SIEmpty": [],
    "MSI": {"one": 1, "two": 2, "three": 3},
    "MSIone": {"one": 1},
    "MSIEmpty": {},
    "I": 17,
    "F": 1.5,
    "FZero": 0.0,
    "X": "x",
    "U": {"V": "v"},
    "Nil": None,
    "True": True,
    "Str": "<b>&</b>",
    "Strs": ["a", "b", "c"],
    "Nested": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}},
}


@dataclass
class Container:
    ID: str
    Names: list[str]
    Labels: dict[str, str] = field(default_factory=dict)
    State: Any = None
    Size: int = 0

    def Label(self, name: str) -> str:
        return self.Labels.get(name, "")

    def Fail(self) -> str:
        raise ValueError("boom")


CTR = Container("abc123", ["web"], {"com.example": "yes"})


# -- rendering -----------------------------------------------------------------------------------
RENDER_CASES: list[tuple[str, Any, str]] = [
    # text, fields, maps
    ("plain text", DATA, "plain text"),
    ("", DATA, ""),
    ("{{.X}}", DATA, "x"),
    ("{{.U.V}}", DATA, "v"),
    ("{{.MSI.two}}", DATA, "2"),
    ("{{.Missing}}", DATA, "<no value>"),
    ("{{.Missing.Deeper}}", DATA, "<no value>"),
    ("{{.Nil}}", DATA, "<no value>"),
    ("{{.}}", None, "<no value>"),
    ("{{.X}}", None, "<no value>"),
    ("{{.MSI}}", DATA, "map[one:1 three:3 two:2]"),
    ("{{.SI}}", DATA, "[3 4 5]"),
    ("{{.SIEmpty}}", DATA, "[]"),
    ("{{.True}}", DATA, "true"),
    ("{{.F}}", DATA, "1.5"),
    ("{{.Nested.Ports}}", DATA, "map[80/tcp:[map[HostIp:0.0.0.0 HostPort:8080]]]"),
    ("{{.}}", [None, "a"], "[<nil> a]"),
    ("{{.}}", {"b": None}, "map[b:<nil>]"),
    # literals
    ('{{"x\\ty"}}', None, "x\ty"),
    ("{{`raw\\n`}}", None, "raw\\n"),
    ('{{"\\u00e9"}}', None, "é"),
    ("{{'a'}}", None, "97"),
    ("{{1.5}} {{1e3}} {{0x10}} {{1_000}} {{-3}} {{017}} {{1.0}}", None, "1.5 1000 16 1000 -3 15 1"),
    ("{{true}} {{false}}", None, "true false"),
    ("{{printf `%T %T %T` 1 1.0 'a'}}", None, "int float64 int"),
    # index, len, slice
    ('{{index .MSI "three"}}', DATA, "3"),
    ("{{index .SI 0}}", DATA, "3"),
    ('{{index .MSI "nope"}}', DATA, "<no value>"),
    ('{{index .Nested.Ports "80/tcp" 0 "HostPort"}}', DATA, "8080"),
    ('{{(index (index .Nested.Ports "80/tcp") 0).HostPort}}', DATA, "8080"),
    ('{{index "abc" 1}}', None, "98"),
    ("{{len .SI}} {{len .MSI}} {{len .X}} {{len `héllo`}}", DATA, "3 3 1 6"),
    ("{{slice .SI 1}} {{slice .SI 1 2}} {{slice `hello` 1 3}}", DATA, "[4 5] [4] el"),
    # pipelines and parentheses
    ("{{.X | printf `%s-%s` `a`}}", DATA, "a-x"),
    ("{{.SI | len}}", DATA, "3"),
    ("{{printf `%d %d` (len .SI) (index .SI 2)}}", DATA, "3 5"),
    ("{{($).X}}", DATA, "x"),
    ("{{(.U).V}}", DATA, "v"),
    # if / else if / with
    ("{{if .True}}T{{else}}F{{end}}", DATA, "T"),
    ("{{if .SIEmpty}}T{{else}}F{{end}}", DATA, "F"),
    ("{{if .Missing}}T{{else}}F{{end}}", DATA, "F"),
    ("{{if .FZero}}T{{else}}F{{end}}", DATA, "F"),
    ("{{if eq .I 1}}1{{else if eq .I 17}}17{{else}}?{{end}}", DATA, "17"),
    ("{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}", None, "3"),
    ("{{with .U}}{{.V}}{{end}}", DATA, "v"),
    ("{{with .SIEmpty}}{{.}}{{else}}EMPTY{{end}}", DATA, "EMPTY"),
    ("{{with .Missing}}x{{else with .U}}{{.V}}{{end}}", DATA, "v"),
    # range
    ("{{range .SI}}-{{.}}-{{end}}", DATA, "-3--4--5-"),
    ("{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", DATA, "EMPTY"),
    ("{{range .Missing}}x{{else}}none{{end}}", DATA, "none"),
    ("{{range .MSI}}-{{.}}-{{end}}", DATA, "-1--3--2-"),
    ("{{range $k, $v := .MSI}}{{$k}}={{$v}};{{end}}", DATA, "one=1;three=3;two=2;"),
    ("{{range $x := .SI}}<{{$x}}>{{end}}", DATA, "<3><4><5>"),
    ("{{range $i, $e := .Strs}}{{$i}}:{{$e}} {{end}}", DATA, "0:a 1:b 2:c "),
    ("{{range $i, $e := .SI}}{{if eq $i 1}}{{continue}}{{end}}{{$e}}{{end}}", DATA, "35"),
    ("{{range .SI}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}", DATA, "3"),
    ("{{range 3}}{{.}}{{end}}", None, "012"),
    ("{{range .SI}}{{$.X}}{{end}}", DATA, "xxx"),
    # variables
    ("{{$x := .I}}{{$x}}", DATA, "17"),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", None, "2"),
    ("{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}", DATA, "17,true"),
    ("{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}", DATA, "v"),
    ("{{$.U.V}}", DATA, "v"),
    # trim markers and comments
    ("a  {{- .X -}}  b", DATA, "axb"),
    ("a \n\t {{- .X}} \n b", DATA, "ax \n b"),
    ("{{-3}}", None, "-3"),
    ("x {{- 3 -}} y", None, "x3y"),
    ("a{{/* a comment */}}b", None, "ab"),
    ("a {{- /* c */ -}} b", None, "ab"),
    ("{{.X\n}}", DATA, "x"),
    # logic and comparison
    ("{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", None, "false 0 0 1"),
    ("{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", None, "0 1 true 1"),
    ("{{or .SIEmpty `empty`}}", DATA, "empty"),
    ("{{not true}} {{not 0}} {{not .Missing}}", DATA, "false true true"),
    ("{{if and true 1 `hi` | not}}T{{else}}F{{end}}", None, "F"),
    (
        "{{eq .X `x`}} {{eq .I 1 2 17}} {{ne .I 17}} {{eq .Missing `x`}}",
        DATA,
        "true true false false",
    ),
    ("{{lt 1 2}} {{le 2 2}} {{gt `b` `a`}} {{ge 1.5 2.5}}", None, "true true true false"),
    # print family
    ("{{print 1 2 `a` 3 `b` `c`}}", None, "1 2a3bc"),
    ("{{print nil}}", None, "<nil>"),
    ("{{println 1 2 3}}", None, "1 2 3\n"),
    ("{{printf `%04x` 127}}", None, "007f"),
    ("{{printf `%g` 3.5}}", None, "3.5"),
    ("{{printf `%s` .Missing}}", DATA, "%!s(<nil>)"),
    ("{{.Missing | printf `%v`}}", DATA, "<nil>"),
    (
        '{{html "<script>alert(\\"XSS\\");</script>"}}',
        None,
        "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
    ),
    ("{{js `It'd be nice.`}}", None, "It\\'d be nice."),
    ('{{"http://www.example.org/"|urlquery}}', None, "http%3A%2F%2Fwww.example.org%2F"),
    # Docker's functions
    ("{{json .}}", {"b": [1, 2.5, None], "a": "<&>"}, '{"a":"<&>","b":[1,2.5,null]}'),
    ("{{json .X}}", DATA, '"x"'),
    ("{{.Strs | json}}", DATA, '["a","b","c"]'),
    ("{{json .Missing}}", DATA, "null"),
    ("{{json .Nested}}", DATA, '{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}}'),
    ('{{join .Strs ", "}}', DATA, "a, b, c"),
    ('{{split "a:b:c" ":"}}', None, "[a b c]"),
    ('{{index (split "busybox:latest" ":") 1}}', None, "latest"),
    ('{{split "ab" ""}}', None, "[a b]"),
    ('{{title "hello wide-world_x"}}', None, "Hello Wide-World_x"),
    ("{{lower `ABC` }}{{upper `def`}}", None, "abcDEF"),
    ('{{pad "x" 2 3}}|{{pad "" 2 3}}|', None, "  x   ||"),
    ('{{truncate "abcdef" 3}} {{truncate "ab" 3}} {{truncate "abc" 3}}', None, "abc ab abc"),
    # objects: attributes, methods, typed nil
    ("{{.ID}} {{.Names}} {{.Size}}", CTR, "abc123 [web] 0"),
    ('{{.Label "com.example"}}|{{.Label "nope"}}', CTR, "yes|"),
    ('{{"com.example" | .Label}}', CTR, "yes"),
    ("{{.State}}", CTR, "<nil>"),
    ("{{.Labels}}", CTR, "map[com.example:yes]"),
    ("{{.}}", CTR, "{abc123 [web] map[com.example:yes] <nil> 0}"),
    (
        "{{json .}}",
        CTR,
        '{"ID":"abc123","Names":["web"],"Labels":{"com.example":"yes"},"State":null,"Size":0}',
    ),
    ("{{range .Names}}{{.}}{{end}}", CTR, "web"),
]


@pytest.mark.parametrize(("text", "data", "want"), RENDER_CASES)
def test_render(text: str, data: Any, want: str) -> None:
    assert render(text, data) == want


# -- errors --------------------------------------------------------------------------------------
PARSE_ERRORS: list[tuple[str, str]] = [
    ("{{.Foo }", 'template: :1: unexpected "}" in operand'),
    ("{{.Foo}", "template: :1: bad character U+007D '}'"),
    ("{{.X", "template: :1: unclosed action"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if .X}}", "template: :1: unexpected EOF"),
    ("a\n{{if}}{{end}}", "template: :2: missing value for if"),
    ("{{}}", "template: :1: missing value for command"),
    ("{{nosuch .X}}", 'template: :1: function "nosuch" not defined'),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{(.X}}", "template: :1: unclosed left paren"),
    ("{{.X)}}", "template: :1: unexpected right paren"),
    ("{{.X | 3}}", "template: :1: non executable command in pipeline stage 2"),
    ('{{"x".A}}', 'template: :1: unexpected . after term "\\"x\\""'),
    ("{{range .L}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{/* open", "template: :1: unclosed comment"),
    ("{{/* c */ .X}}", "template: :1: comment ends before closing delimiter"),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{range $a, $b, $c := .}}{{end}}", "template: :1: too many declarations in range"),
    ("{{if $a, $b := .}}{{end}}", "template: :1: too many declarations in if"),
]


@pytest.mark.parametrize(("text", "want"), PARSE_ERRORS)
def test_parse_errors(text: str, want: str) -> None:
    with pytest.raises(TemplateError) as info:
        Template.parse(text)
    assert info.value.go_message == want
    assert str(info.value) == f"template parsing error: {want}"
    assert isinstance(info.value, InvalidArgument)


EXEC_ERRORS: list[tuple[str, Any, str, str, str]] = [
    (
        "{{.Nope}}",
        CTR,
        "1:2",
        ".Nope",
        "can't evaluate field Nope in type Container",
    ),
    (
        "{{.ID.X}}",
        CTR,
        "1:5",
        ".ID.X",
        "can't evaluate field X in type string",
    ),
    (
        "{{.I.X}}",
        DATA,
        "1:4",
        ".I.X",
        "can't evaluate field X in type int",
    ),
    (
        "x\n{{.I.X}}",
        DATA,
        "2:4",
        ".I.X",
        "can't evaluate field X in type int",
    ),
    (
        "{{.Nil.X}}",
        DATA,
        "1:6",
        ".Nil.X",
        "nil pointer evaluating interface {}.X",
    ),
    ("{{.X 1}}", DATA, "1:2", ".X", "X is not a method but has arguments"),
    (
        "{{.ID 1}}",
        CTR,
        "1:2",
        ".ID",
        "ID has arguments but cannot be invoked as function",
    ),
    ("{{.Fail}}", CTR, "1:2", ".Fail", "error calling Fail: boom"),
    (
        "{{index .SI 10}}",
        DATA,
        "1:2",
        "index .SI 10",
        "error calling index: index out of range: 10",
    ),
    (
        "{{index nil 1}}",
        None,
        "1:2",
        "index nil 1",
        "error calling index: index of untyped nil",
    ),
    (
        "{{len 3}}",
        None,
        "1:2",
        "len 3",
        "error calling len: len of type int",
    ),
    (
        "{{index}}",
        None,
        "1:2",
        "index",
        "wrong number of args for index: want at least 1 got 0",
    ),
    (
        "{{not 1 2}}",
        None,
        "1:2",
        "not",
        "wrong number of args for not: want 1 got 2",
    ),
    ("{{nil}}", None, "1:2", "nil", "nil is not a command"),
    ("{{if nil}}x{{end}}", None, "1:5", "nil", "nil is not a command"),
    (
        "{{3 2}}",
        None,
        "1:2",
        "3",
        "can't give argument to non-function 3",
    ),
    (
        "{{$x := 1}}{{$x 2}}",
        None,
        "1:13",
        "$x",
        "can't give argument to non-function $x",
    ),
    (
        "{{1|printf}}",
        None,
        "1:4",
        "printf",
        "wrong type for value; expected string; got int",
    ),
    (
        "{{lt 1 2.0}}",
        None,
        "1:2",
        "lt 1 2.0",
        "error calling lt: incompatible types for comparison",
    ),
    (
        "{{eq .SI .SI}}",
        DATA,
        "1:2",
        "eq .SI .SI",
        "error calling eq: non-comparable type [3 4 5]: []interface {}",
    ),
    (
        "{{range .X}}{{end}}",
        DATA,
        "1:8",
        ".X",
        "range can't iterate over x",
    ),
    (
        "{{lower 5}}",
        None,
        "1:2",
        "lower 5",
        "wrong type for value; expected string; got int",
    ),
    (
        "{{join .SI `,`}}",
        DATA,
        "1:2",
        "join .SI `,`",
        "wrong type for value; expected []string; got []interface {}",
    ),
    (
        "{{3 | index 1}}",
        None,
        "1:6",
        "index 1",
        "error calling index: can't index item of type int",
    ),
]


@pytest.mark.parametrize(("text", "data", "where", "at", "msg"), EXEC_ERRORS)
def test_exec_errors(text: str, data: Any, where: str, at: str, msg: str) -> None:
    want = f'template: :{where}: executing "" at <{at}>: {msg}'
    tmpl = Template.parse(text)
    with pytest.raises(TemplateError) as info:
        tmpl.execute(data)
    assert info.value.go_message == want


def test_execute_partial_keeps_output_before_error() -> None:
    assert Template.parse("ok {{.Nope}} never").execute_partial(CTR) == "ok "


def test_extra_funcs_and_reuse() -> None:
    tmpl = Template.parse("{{double .I}}", funcs={"double": lambda x: x * 2})
    assert tmpl.execute({"I": 2}) == "4"
    assert tmpl.execute({"I": 5}) == "10"
    with pytest.raises(TemplateError, match="wrong number of args for double: want 1 got 2"):
        Template.parse("{{double 1 2}}", funcs={"double": lambda x: x * 2}).execute(None)


# -- fmt -----------------------------------------------------------------------------------------
PRINTF_CASES: list[tuple[str, list[Any], str]] = [
    ("%[2]s %[1]s|%[3]d|%[1]s %s", ["a", "b"], "b a|%!d(BADINDEX)|a b"),
    ("%.*f|%[1]s %[1]s", [2, 3.14159], "3.14|%!s(int=2) %!s(int=2)"),
    ("%s|%v|%d", ["a", [1, "b"], 42], "a|[1 b]|42"),
    ("%-10s|%10s|%.2s", ["ab", "cd", "xyz"], "ab        |        cd|xy"),
    (
        "%5d|%-5d|%05d|%+d|% d|%x|%X|%#x|%o|%#o|%b",
        [42, 42, -42, 5, 5, 255, 255, 255, 8, 8, 5],
        "   42|42   |-0042|+5| 5|ff|FF|0xff|10|010|101",
    ),
    ("%c|%q|%U|%#U", [65, 65, 0x1F600, 65], "A|'A'|U+1F600|U+0041 'A'"),
    (
        "%q|%+q|%#q|%x|% x",
        ['a"b\n', "é", "back`tick", "hi", "hi"],
        '"a\\"b\\n"|"\\u00e9"|"back`tick"|6869|68 69',
    ),
    ("%t|%v", [True, False], "true|false"),
    (
        "%f|%.2f|%e|%g|%G|%.3g|%8.3f|%-8.2f|",
        [1.5, 3.14159, 1234.5678, 1e21, 1e-7, 3.14159, 2.5, 2.5],
        "1.500000|3.14|1.234568e+03|1e+21|1E-07|3.14|   2.500|2.50    |",
    ),
    (
        "%v %v %v %v %v",
        [1e6, 123456.0, 1234567.0, 0.0001, 0.00001],
        "1e+06 123456 1.234567e+06 0.0001 1e-05",
    ),
    ("%v %v %v", [float("inf"), float("-inf"), float("nan")], "+Inf -Inf NaN"),
    ("%d|%s|%t", ["x", 5, 1], "%!d(string=x)|%!s(int=5)|%!t(int=1)"),
    ("%s %d", ["a"], "a %!d(MISSING)"),
    ("%s", ["a", "b", 3], "a%!(EXTRA string=b, int=3)"),
    ("%d%%|%", [5], "5%|%!(NOVERB)"),
    ("%s|%v", [None, None], "%!s(<nil>)|<nil>"),
    ("%5v|", [[1, 2]], "[    1     2]|"),
    ("%v", [{"b": [1], "a": {"z": None}}], "map[a:map[z:<nil>] b:[1]]"),
    ("%*d|%-*d|", [4, 7, 3, 1], "   7|1  |"),
    (
        "%T %T %T %T %T",
        ["s", 1, 1.0, [1], {}],
        "string int float64 []interface {} map[string]interface {}",
    ),
]


@pytest.mark.parametrize(("fmt", "args", "want"), PRINTF_CASES)
def test_sprintf(fmt: str, args: list[Any], want: str) -> None:
    assert sprintf(fmt, args) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (1.0, "1"),
        (100.0, "100"),
        (1e20, "1e+20"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (1.25e-9, "1.25e-09"),
        (True, "true"),
        (None, "<nil>"),
        (("a", 1), "[a 1]"),
        ({2: "b", 1: "a"}, "map[1:a 2:b]"),
    ],
)
def test_format_value(value: Any, want: str) -> None:
    assert format_value(value) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("a\tb\x01\u2028é", '"a\\tb\\u0001\\u2028é"'),
        ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'),
        (1.0, "1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (-0.0, "-0"),
        (b"hi", '"aGk="'),
        ("<&>", '"<&>"'),
    ],
)
def test_json_encode(value: Any, want: str) -> None:
    assert json_encode(value) == want


def test_json_escape_html_option_and_nan() -> None:
    assert json_encode("<&>", escape_html=True) == '"\\u003c\\u0026\\u003e"'
    assert render("{{json .}}", float("nan")) == ""  # Docker drops the encoder's error


def test_go_quote() -> None:
    assert go_quote('a"\\\x7f\u00a0😀') == '"a\\"\\\\\\x7f\\u00a0😀"'
    assert go_quote("é", ascii_only=True) == '"\\u00e9"'


# -- tabwriter and Docker's output modes ---------------------------------------------------------
def test_tabwrite_docker_images_layout() -> None:
    rows = [
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        ["busybox", "latest", "a416a98b71e2", "2 weeks ago", "4.26MB"],
    ]
    assert tabwrite(rows) == (
        "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n"
        "busybox      latest    a416a98b71e2   2 weeks ago   4.26MB\n"
    )


def test_tabwrite_blocks_follow_elastic_tabstops() -> None:
    text = "a\tb\tc\naa\tb\naaa\nx\tlonger-than-ten\tz\n"
    assert tabwrite_text(text) == (
        "a         b         c\naa        b\naaa\nx         longer-than-ten   z\n"
    )


def test_tabwrite_edge_cases() -> None:
    assert tabwrite([]) == ""
    assert tabwrite([["only"]]) == "only\n"
    assert tabwrite([["a", ""], ["b", "c"]]) == "a         \nb         c\n"
    assert tabwrite_text("a\tb") == "a         b"  # unterminated last line: no newline added
    assert tabwrite([["日本", "x"], ["a", "y"]]) == "日本      x\na         y\n"


ROWS = [
    {"ID": "abc123", "Name": "foo", "Size": 1},
    {"ID": "def", "Name": "a-much-longer-name", "Size": 22},
]
DEFAULT = "table {{.ID}}\t{{.Name}}"
HEADERS = {"ID": "CONTAINER ID", "Name": "NAMES"}


def test_format_rows_default_table() -> None:
    want = "CONTAINER ID   NAMES\nabc123         foo\ndef            a-much-longer-name\n"
    assert format_rows(None, ROWS, DEFAULT, HEADERS) == want
    assert format_rows("", ROWS, DEFAULT, HEADERS) == want
    assert format_rows("table", ROWS, DEFAULT, HEADERS) == want


def test_format_rows_custom_table_with_escaped_tabs() -> None:
    got = format_rows("table {{.Name}}\\t{{.Size}}\\t{{.ID}}", ROWS, DEFAULT, HEADERS)
    assert got == (
        "NAMES                SIZE      CONTAINER ID\n"
        "foo                  1         abc123\n"
        "a-much-longer-name   22        def\n"
    )


def test_format_rows_header_rules() -> None:
    # unknown fields fall back to the upper-cased name; Docker's header functions keep the
    # name, except pad, which pads the header like the cells
    got = format_rows(
        "table {{json .Name}}\t{{pad .ID 1 1}}\t{{.Other}}", ROWS[:1], DEFAULT, HEADERS
    )
    assert got == 'NAMES      CONTAINER ID    OTHER\n"foo"      abc123          <no value>\n'
    labelled = format_rows('table {{.Label "com.example"}}', [CTR], DEFAULT, {"Label": "LABEL"})
    assert labelled == "LABEL\nyes\n"
    assert format_rows("table {{.ID}}", [], DEFAULT, HEADERS) == "CONTAINER ID\n"


def test_format_rows_json_and_plain() -> None:
    assert format_rows("json", ROWS[:1], DEFAULT, HEADERS) == (
        '{"ID":"abc123","Name":"foo","Size":1}\n'
    )
    assert format_rows("{{.ID}}", ROWS, DEFAULT, HEADERS) == "abc123\ndef\n"
    assert format_rows("  {{.ID}}: {{.Name}}\\n ", ROWS[:1], DEFAULT, HEADERS) == "abc123: foo\n\n"
    assert format_rows("{{.ID}}\\t{{.Size}}", ROWS[:1], DEFAULT, HEADERS) == "abc123\t1\n"


def test_format_rows_errors_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match=r"template parsing error: template: :1: unexpected"):
        format_rows("{{.ID }", ROWS, DEFAULT, HEADERS)
    with pytest.raises(InvalidArgument, match="can't evaluate field Nope in type Container"):
        format_rows("table {{.Nope}}", [CTR], DEFAULT, HEADERS)


# -- odds and ends -------------------------------------------------------------------------------
class _Props:
    @property
    def Good(self) -> str:
        return "ok"

    @property
    def Bad(self) -> str:
        raise RuntimeError("nope")


@pytest.mark.parametrize(
    ("text", "data", "want"),
    [
        ("{{.Good}}", _Props(), "ok"),
        ("{{if .A -}} x {{- else -}} y {{- end}}", {"A": 0}, "y"),
        ("{{range $k, $v := .}}{{$k}}{{end}}", {10: 1, 9: 2}, "910"),
        ("{{ .X }}|{{ .X -}} |", {"X": 1}, "1|1|"),
        ("{{with $x := 0}}a{{else}}{{$x}}{{end}}", None, "0"),
        ("{{range (split `a,b` `,`)}}[{{.}}]{{end}}", None, "[a][b]"),
    ],
)
def test_render_more(text: str, data: Any, want: str) -> None:
    assert render(text, data) == want


def test_more_errors() -> None:
    with pytest.raises(TemplateError, match=r"<\.Bad>: error calling Bad: nope"):
        render("{{.Bad}}", _Props())
    with pytest.raises(TemplateError, match=r":1:6: executing"):
        render("é{{.A.B}}", {"A": 1})  # columns count bytes, as Go's do
    with pytest.raises(TemplateError, match=r"template: :2: unclosed action"):
        Template.parse("{{if\n.X}}{{end")
    with pytest.raises(TemplateError, match=r"\{\{template\}\} is not supported"):
        Template.parse('{{template "x"}}')


def test_import_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dockyard.gotemplate\n"
        "heavy = {'decimal', 'dataclasses', 'inspect', 'json', 'html', 'urllib.parse'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_range_variables_follow_go() -> None:
    # the declared variables hold the whole value in {{else}}, as in Go
    assert render("{{range $i, $e := .}}{{$i}}{{$e}}{{else}}{{len $i}}{{end}}", []) == "0"
    assert render("{{$i := 0}}{{range $i = .}}{{end}}{{$i}}", ["a", "b"]) == "b"
