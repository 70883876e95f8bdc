"""`generate.constrain`: the built-in grammars against real items of their formats, the spec's
forms and their located errors, and a tiny model end to end (its samples are in the form asked)."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pytest

from engine.cli import main
from engine.constrain import forms, grammars, library
from engine.errors import StageError
from tiny import spec_text

from conftest import REPO, corpus_or_skip

COMPILED = {name: library.grammar("lark", builtin.lark) for name, builtin in grammars.BUILTINS.items()}


# -- the built-in grammars take real work and refuse broken work ------------------------------------

def test_abc_grammar_takes_real_tunes():
    from engine.checks.abc_notation import REQUIRED, headers
    from engine.corpora import abc_tunes

    tunes = corpus_or_skip(lambda: [t for p in abc_tunes.files({"collections": ["oneills1850"]})
                                    for t in abc_tunes.tunes(p)])
    with_headers = [t["music"] for t in tunes if set(REQUIRED) <= headers(t["music"])]  # what the check asks for
    sample = random.Random(0).sample(with_headers, 60)
    refused = [(text.splitlines()[1], why) for text in sample if (why := library.accepts(COMPILED["abc"], text + "\n"))]
    # over all 1,874 such tunes of O'Neill's, 1,866 (99.6%) pass; the others have typos (`!c2`, `|]*`)
    assert len(refused) <= 1, refused


def test_level_grammar_takes_real_windows():
    from engine.corpora import mario_levels

    rows = corpus_or_skip(lambda: mario_levels.grid(mario_levels.files({})[0]))
    for start in range(0, len(rows[0]) - 50, 150):
        window = mario_levels.to_columns(rows, start, 50) + "\n"
        assert library.accepts(COMPILED["level"], window) is None, start


def test_play_grammar_takes_the_scenes_the_check_passes():
    from engine.checks.play_format import analyse
    from engine.corpora import shakespeare

    scenes = corpus_or_skip(lambda: list(shakespeare.scenes(shakespeare.play_files(plays=["twelfth-night"])[0])))
    verdicts = []
    for scene in scenes:
        text = f"# {scene['title']}\n\n{scene['text']}\n"
        verdicts.append((library.accepts(COMPILED["play"], text) is None, analyse(text)["follows_format"]))
    assert all(grammar == check for grammar, check in verdicts), verdicts  # all 775 scenes: 772 agree (3 the check passes are refused)
    assert sum(grammar for grammar, _ in verdicts) >= len(scenes) - 1


def test_svg_grammar_takes_normalised_drawings():
    from engine.corpora import clipart
    from engine.formats import svg_normal

    hand_made = svg_normal.normalise(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64pt" height="48pt">'
        '<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/><stop offset="1" stop-color="#00f"/>'
        '</linearGradient></defs><g style="fill:url(#g);stroke:#000000" transform="translate(2,2)">'
        '<rect x="0" y="0" width="60" height="44" rx="3"/><circle cx="30" cy="22" r="10" fill="red"/>'
        '<path d="M 10,40 L 54,40 L 32,8 z" fill-opacity="0.5"/><text x="4" y="12" font-size="8">Tom &amp; <tspan>Jerry</tspan></text>'
        '</g><use xlink:href="#g" x="1"/></svg>')
    assert library.accepts(COMPILED["svg"], hand_made) is None, hand_made
    # the path bounds (PATH_COMMANDS, PATH_REPEATS) come from the corpus's drawings up to 512 tokens: the 40
    # with the most path commands, and every 4th of the rest (all 1,109 take two minutes)
    drawn = [record["svg"] for record, _ in corpus_or_skip(
        lambda: list(clipart.records({"corpus": "clipart-drawings", "max_tokens": 512})))]
    assert len(drawn) >= 1000
    def commands(text):  # the most commands in one path
        return max([len(re.findall(r"[A-Za-z]", d)) for d in re.findall(r' d="([^"]*)"', text)], default=0)

    def groups(text):  # the most numbers after one command letter
        return max([len(run.split()) for d in re.findall(r' d="([^"]*)"', text) for run in re.split(r"[A-Za-z]", d)],
                   default=0)

    drawn.sort(key=commands, reverse=True)
    most_groups = sorted(drawn[40:], key=groups, reverse=True)[:20]
    chosen = drawn[:40] + most_groups + [text for text in drawn[40::4] if text not in most_groups]
    refused = [text for text in chosen if library.accepts(COMPILED["svg"], text + "\n") is not None]
    assert [text for text in refused if 'stop-opacity="0:1"' not in text] == []  # one file's opacity is not a number


@pytest.mark.parametrize("name, broken", [
    ("abc", "X:1\nT:No key\nM:4/4\nL:1/8\n|:GABc dedB:|\n"),  # no K: line
    ("abc", "X:1\nM:4/4\nL:1/8\nK:G\nGAB@ c|\n"),  # not a symbol of ABC
    ("abc-metred", "X:1\nT:Short bars\nM:6/8\nL:1/8\nK:G\nG2 A|B2 G2|\n"),  # bars of 3 and 4 eighths in 6/8
    ("abc-metred", "X:1\nM:6/8\nL:1/4\nK:G\nG3|\n"),  # L:1/4: the metred grammar counts eighths
    ("level", "--------------\nXX------------\nXX-----------\n"),  # a column of 13 tiles
    ("level", "XX----------Z-\n"),  # not a tile
    ("svg", '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">\n<g>\n<rect width="5" height="5"/>\n</svg>'),
    ("svg", '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">\n<path d="M1 1L hello"/>\n</svg>'),
    ("svg", '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">\n<path d="M2.5L3.5L1.5"/>\n</svg>'),  # L x, no y
    ("svg", '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">\n<path d="M1 1C2 2 3 3Z"/>\n</svg>'),  # C of 4
    ("svg", '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">\n<path d="M1 1' + "L2 2" * 64 + '"/>\n</svg>'),
    ("play", "**VIOLA**  \nWhat country, friends, is this?\n"),  # one turn is no dialogue
    ("play", "**VIOLA**  \n**CAPTAIN**  \nThis is Illyria, lady.\n**VIOLA**  \nAnd what should I do?\n"),  # no speech
    ("play", "**VIOLA**  \n...\n**CAPTAIN**  \nThis is Illyria, lady.\n"),  # speech without a word
    ("play", "# Act I\n#  \n**VIOLA**  \nWhat country?\n**CAPTAIN**  \nIllyria.\n"),  # a heading without a word
])
def test_builtin_grammars_refuse_broken_items(name, broken):
    assert library.accepts(COMPILED[name], broken) is not None


@pytest.mark.parametrize("spec, name", [("folk-tunes.yaml", "abc"), ("mario-levels.yaml", "level"),
                                        ("drawings.yaml", "svg"), ("shakespeare-scenes.yaml", "play")])
def test_the_shipped_prompts_begin_a_document_of_their_format(spec, name):
    from engine.spec import load_spec

    constraint = forms.read(name, REPO / "specs")
    for prompt in load_spec(REPO / "specs" / spec).get("generate.prompts"):
        prefix = constraint.prefix(prompt)
        assert prefix and library.accepts(constraint.grammar, prefix, whole=False) is None, prompt


def test_where_a_document_begins_in_a_prompt():
    prefix = lambda name, prompt: forms.read(name, REPO).prefix(prompt)  # noqa: E731
    assert prefix("abc", "Write a jig.\nX:1\nT:A\n") == "X:1\nT:A\n"
    assert prefix("abc", "Write a folk tune in ABC notation.\n") == ""  # an instruction: the completion is the tune
    assert prefix("level", "A level:\nXX------------\nXX----") == "XX------------\nXX----"
    assert prefix("svg", "<!-- shapes: star -->\n<svg xmlns") == "<svg xmlns"
    assert prefix("play", "# Twelfth Night\n\n**VIOLA**  \n") == "# Twelfth Night\n\n**VIOLA**  \n"
    assert forms.read({"regex": "[a-z]+"}, REPO).prefix("X:1\n") == ""  # a user's form: the completion alone


def test_a_gbnf_grammar_file_reads_as_lark_does():
    gbnf = library.grammar("grammar", 'root ::= word (" " word)* "."\nword ::= [a-z]+\n')
    lark = library.grammar("grammar", 'start: WORD (" " WORD)* "."\nWORD: /[a-z]+/\n')
    for compiled in (gbnf, lark):
        assert library.accepts(compiled, "the king sleeps.") is None
        assert library.accepts(compiled, "the King sleeps.") is not None


def test_a_prompt_that_does_not_begin_the_format_fails_generate_naming_the_field(tiny_model):
    from transformers import AutoTokenizer

    from engine.constrain import Steering

    steering = Steering("abc", REPO, AutoTokenizer.from_pretrained(tiny_model), 300)
    steering.logits_processor("X:1\nT:A\nM:6/8\n", 40)  # a header under way
    with pytest.raises(StageError, match=r"generate.constrain: the text of generate.prompts\[1\] from 'X:1\\nM:six"):
        steering.logits_processor("X:1\nM:six eight\n", 40, "generate.prompts[1]")


# -- the spec's forms: located errors, found without a model ----------------------------------------

def constrained(constrain_yaml: str, **changes) -> str:
    text = spec_text("  path: tiny-model").replace("  temperature: 0.9", f"  temperature: 0.9\n  constrain: {constrain_yaml}")
    text = text.replace("max_new_tokens: 8", "max_new_tokens: 40")
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("constrain, files, where, message", [
    ('{regex: "(the|king"}', {}, "$.generate.constrain.regex",
     'does not compile: invalid regex "(the|king": regex parse error: (the|king error: unclosed group'),
    ("{grammar: grammars/bad.lark}", {"grammars/bad.lark": 'start: WORD "!" tail\nWORD: /[a-z]+/\n'},
     "$.generate.constrain.grammar", 'grammars/bad.lark, line 1 column 8: does not compile: unknown name: "tail"'),
    ("{grammar: grammars/none.lark}", {}, "$.generate.constrain.grammar", "grammars/none.lark: no such file"),
    ("{grammar: grammars/bad.gbnf}", {"grammars/bad.gbnf": 'root ::= "a" missing\n'}, "$.generate.constrain.grammar",
     "cannot be read as a grammar: Failed to convert the grammar from GBNF to Lark: Rule 'missing' not found"),
    ('{json_schema: {type: strng}}', {}, "$.generate.constrain.json_schema", "does not compile: Invalid type: strng"),
    ("{regex: a, grammar: g.lark}", {}, "$.generate.constrain", "give exactly one of grammar, regex, json_schema"),
    ("abd", {}, "$.generate.constrain", "must be one of: 'abc', 'abc-metred', 'svg', 'level', 'play' (got 'abd') (did you mean abc?)"),
])
def test_a_constraint_that_cannot_compile_is_a_located_spec_error(scenes_project, capsys, constrain, files, where, message):
    for name, text in files.items():
        (scenes_project / name).parent.mkdir(parents=True, exist_ok=True)
        (scenes_project / name).write_text(text)
    (scenes_project / "spec.yaml").write_text(constrained(constrain))
    line = next(i for i, text in enumerate((scenes_project / "spec.yaml").read_text().splitlines(), 1) if "constrain:" in text)
    for command in ("validate", "plan"):
        assert main([command, "spec.yaml"]) == 2
        err = capsys.readouterr().err
        assert re.search(rf"spec\.yaml:{line}:\d+  {re.escape(where)}  ", err) and message in err, err


LIGHT = """
import sys
from engine.cli import main
codes = [main(["validate", "spec.yaml"]), main(["plan", "spec.yaml"])]
print("CODES", codes, "HEAVY", sorted(m for m in ("torch", "transformers", "datasets", "numpy") if m in sys.modules))
"""


def test_validate_and_plan_of_a_constrained_spec_stay_light(scenes_project):
    (scenes_project / "spec.yaml").write_text(constrained("abc"))
    out = subprocess.run([sys.executable, "-c", LIGHT], cwd=scenes_project, capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert "CODES [0, 0] HEAVY []" in out.stdout, out.stdout + out.stderr


def test_no_constraint_leaves_the_generate_key_as_it_was():
    from engine.spec import load_spec
    from engine.stages import generate

    spec = load_spec(REPO / "specs" / "quickstart.yaml")
    assert "generate.constrain" not in generate.reads(spec)
    assert not any(label.startswith("constrain") for label in generate.inputs(spec))


# -- end to end: a tiny model's samples are in the form asked; a changed constraint reruns generate --

REGEX = r"(king|queen|ghost)( (king|queen|ghost)){1,2}\."
LARK = 'start: WORD (" " WORD){1,3} "!"\nWORD: "sea" | "storm" | "moon"\n'
LARK_AS_REGEX = r"(sea|storm|moon)( (sea|storm|moon)){1,3}!"


def _samples(tmp_path, key: str) -> list[dict]:
    path = tmp_path / "store" / "store" / key[:2] / key / "out" / "samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_tiny_models_samples_match_the_regex_then_the_grammar_file(scenes_project, tmp_path, capsys):
    """The untrained model (generate[baseline]) and the barely trained one (6 steps) both write
    word salad unconstrained; constrained, every sample is whole in the form (each ends at EOS well
    before max_new_tokens, as the grammar allows nothing else once complete)."""
    spec = scenes_project / "spec.yaml"
    spec.write_text(constrained(f"{{regex: '{REGEX}'}}", **{"  temperature: 0.9\n": "  temperature: 0.9\n  baseline: true\n"}))
    assert main(["run", "spec.yaml"]) == 0
    nodes = json.loads((scenes_project / "spec.lock.json").read_text())["nodes"]
    for name in ("generate", "generate[baseline]"):
        samples = _samples(tmp_path, nodes[name]["key"])
        assert len(samples) == 4
        assert all(re.fullmatch(REGEX, s["completion"]) for s in samples), [s["completion"] for s in samples]

    capsys.readouterr()  # `engine generate` samples under the spec's constraint too, unless --no-constrain
    assert main(["generate", "spec.yaml", "Once upon a time ", "--stage", "model"]) == 0
    assert re.fullmatch(REGEX, capsys.readouterr().out.removeprefix("Once upon a time ").rstrip("\n"))
    assert main(["generate", "spec.yaml", "Once upon a time ", "--stage", "model", "--no-constrain"]) == 0
    assert not re.fullmatch(REGEX, capsys.readouterr().out.removeprefix("Once upon a time ").rstrip("\n"))

    (scenes_project / "grammars").mkdir()
    (scenes_project / "grammars" / "words.lark").write_text(LARK)
    spec.write_text(spec.read_text().replace(f"{{regex: '{REGEX}'}}", "{grammar: grammars/words.lark}"))
    capsys.readouterr()
    assert main(["run", "spec.yaml", "--json"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["ran"]) == ["generate", "generate[baseline]"]
    nodes = json.loads((scenes_project / "spec.lock.json").read_text())["nodes"]
    for name in ("generate", "generate[baseline]"):
        completions = [s["completion"] for s in _samples(tmp_path, nodes[name]["key"])]
        assert all(re.fullmatch(LARK_AS_REGEX, c) for c in completions), completions

    (scenes_project / "grammars" / "words.lark").write_text(LARK.replace('"moon"', '"moon" | "crown"'))
    assert main(["plan", "spec.yaml", "--json"]) == 0  # the grammar file's content is in the key
    plan = json.loads(capsys.readouterr().out)
    assert sorted(step["stage"] for step in plan if step["action"] == "run") == ["generate", "generate[baseline]"], plan


def test_a_builtin_constrains_the_document_the_prompt_begins(scenes_project, tmp_path):
    """`play` on the tiny spec: the first prompt's heading starts the scene (the grammar reads it),
    the second prompt is no scene, so its completion is one; either way the document is in the
    format as far as it goes (40 tokens stop a scene before its second turn)."""
    (scenes_project / "spec.yaml").write_text(constrained("play"))
    assert main(["run", "spec.yaml"]) == 0
    node = json.loads((scenes_project / "spec.lock.json").read_text())["nodes"]["generate"]
    constraint = forms.read("play", scenes_project)
    samples = _samples(tmp_path, node["key"])
    assert [constraint.prefix(s["prompt"]) for s in samples] == ["# Scene 99\n\n"] * 2 + [""] * 2
    for sample in samples:
        document = constraint.prefix(sample["prompt"]) + sample["completion"]
        assert library.accepts(COMPILED["play"], document, whole=False) is None, document


METRED = ["X:1\nT:A Jig\nM:6/8\nL:1/8\nK:G\nGAB c2d|e3 d2B|A>B c d2e|g6|]\n",
          'X: 284\nT: The Engine\'s Reel\nM: 4/4\nL: 1/8\nK:D\n|:"D"D2 FA d2 (3cBA|B8:|\nA4 F2 D2|d8|]\n',
          "X:2\nT:An Air\nM:3/4\nL:1/8\nK:Em\nE2 G2 B2|e4 d2|B6|]\n"]


@pytest.mark.parametrize("tune", METRED)
def test_the_metred_abc_grammar_takes_tunes_the_check_calls_complete(tune):
    from engine.checks import abc_notation

    assert library.accepts(COMPILED["abc-metred"], tune) is None
    assert abc_notation.check_tune(tune)["complete_bars"]
    assert library.accepts(COMPILED["abc"], tune) is None  # and the plain abc grammar takes them too


def test_a_start_tag_names_each_attribute_once():
    """What a grammar cannot say about XML: between a start tag's attributes, a token whose first
    `=` follows a name the tag has is taken away; a new name, or one that goes on, is not."""
    from engine.constrain.xml_attributes import open_tag, piece, repeated

    def takes_away(text, token):
        state = open_tag(text)
        return state is not None and piece(token) is not None and repeated(*state, piece(token))

    tag = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">\n<path fill="#000" d="M1 1L2 2"'
    assert open_tag(tag) == ({"fill", "d"}, None)
    assert takes_away(tag, ' fill="') and takes_away(tag, ' d="M') and takes_away(tag, " fill =")
    assert not takes_away(tag, ' stroke="') and not takes_away(tag, '"/>') and not takes_away(tag, 'fill="')
    assert takes_away(tag + " fill", '="') and takes_away(tag + " fi", 'll="') and takes_away(tag + " ", 'fill=')
    assert not takes_away(tag + " fil", '="') and not takes_away(tag + " fill", '-rule="')
    assert open_tag('<text font-family="a b=c" x="1"') == ({"font-family", "x"}, None)  # `=` in a value names nothing
    assert open_tag('<a title="x>y"') == ({"title"}, None)  # nor does `>`
    assert open_tag('<path fill="#00') is None and open_tag('<path fill="#000"/>\n') is None  # in a value; closed
    assert open_tag("<!-- a") is None and open_tag("</g") is None and open_tag("no tag") is None


def test_the_svg_constraint_takes_away_a_repeated_attribute(tiny_model):
    """The processor on a tiny model's logits, fed the tokens sampled one step at a time: after
    `<path fill="#000"`, then ` fill`, the `=` is taken away (the name may go on) and a row with
    no `fill` keeps it; a row left with no token at all keeps the grammar's mask; `svg` runs it,
    `play` does not, and it is in the svg generate key."""
    import torch
    from transformers import AutoTokenizer

    from engine.constrain import Steering

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    steering = Steering("svg", tiny_model, tokenizer, len(tokenizer))
    prompt = '<!-- a drawing -->\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9">\n'
    equals, letter = tokenizer.convert_tokens_to_ids("="), tokenizer.convert_tokens_to_ids("s")

    def after(sampled: str, scores=None):
        """The processor's scores once the model has sampled `sampled`, a token a step."""
        processor = steering.logits_processor(prompt, 40)[1]
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        processor(ids, torch.zeros((1, len(tokenizer))))  # the first step: the prompt alone
        for token in tokenizer(sampled)["input_ids"]:
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
            last = processor(ids, torch.zeros((1, len(tokenizer))) if scores is None else scores.clone())
        return last[0]

    repeated = after('<path fill="#000" fill')
    assert torch.isinf(repeated[equals]) and not torch.isinf(repeated[letter])  # `fill-s...` may go on
    assert not torch.isinf(after('<path stroke="#000" fill')[equals])
    only_equals = torch.full((1, len(tokenizer)), float("-inf"))
    only_equals[0, equals] = 0.0
    assert after('<path fill="#000" fill', only_equals)[equals] == 0.0  # nothing else left: the mask stands
    assert Steering("play", tiny_model, tokenizer, len(tokenizer)).pieces is None
    assert "unique attributes" in str(forms.key_inputs(_Spec({"generate.constrain": "svg"}))["constrain svg"])


class _Spec(dict):
    def get(self, path, default=None):
        return super().get(path, default)


def test_where_an_xml_document_stands_and_which_tokens_close_it():
    """The closing steps a token can be; what a document needs next, read a character at a time
    (a `>` inside a value closes nothing); and from how many tokens left a sequence steers."""
    from engine.constrain.xml_closing import Reading, kinds, position, reserve

    assert kinds('"') == kinds('"/>') == kinds('0"') == {"value"}
    assert kinds('" ') == kinds('" fill="') == set()  # a new attribute is no way to the end
    assert kinds("/>") == {"tag", "slash"} and kinds(">") == {"tag"} and kinds("\n") == kinds("\n\n") == set()
    assert kinds("</") == kinds("</svg>") == kinds("<") == {"end"} and kinds("<path") == set()
    assert kinds("=") == kinds('="') == {"equals"}
    assert position('<path d="M1 2') == position('<path d="M1 2" style="a>b') == ("value",)
    assert position('<path d="M1 2"') == position("<path") == position("<path strok") == ("tag", "equals")
    assert position('<path d="M1 2"/>\n') == position("</g>\n") == position('<text x="1">hi') == ("end",)
    assert position("<") == ("slash",) and position("</g") == ()  # in an end tag the grammar decides
    reading = Reading()
    reading.read('<svg viewBox="0 0 9 9">\n<g>\n<path d="M1 1"/>\n<g fill="#000">\n</g>\n')
    assert reading.open == 2  # the root and the first group
    assert reserve(360, 1) == 48 and reserve(360, 3) == 60 and reserve(360, 60) == 180 and reserve(30, 1) == 15


def test_svg_samples_close_before_the_token_limit(tiny_model):
    """An untrained model under the `svg` grammar writes attributes and path data until the limit:
    cut there, the drawing does not parse. With the budget's last tokens steering to the end, every
    sample is a whole document the grammar accepts, `</svg>` and all, 10 groups deep too; and the
    svg key says so."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from engine.constrain import Steering

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    torch.manual_seed(0)  # an untrained GPT-2 on the tiny tokenizer, with room for a drawing (tiny_model has 64)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=32, n_layer=2, n_head=2))
    steering = Steering("svg", tiny_model, tokenizer, len(tokenizer))
    root = '<!-- a drawing -->\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9">\n'

    def documents(prompt: str, budget: int, new: int = 120) -> list[str]:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        torch.manual_seed(0)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=new,
                             num_return_sequences=6, pad_token_id=tokenizer.eos_token_id,
                             eos_token_id=tokenizer.eos_token_id,
                             logits_processor=steering.logits_processor(prompt, budget))
        return [steering.constraint.prefix(prompt) + tokenizer.decode(o[ids.shape[1]:], skip_special_tokens=True)
                for o in out]

    cut = documents(root, budget=100_000)  # a budget far past max_new_tokens: no closing
    assert sum(library.accepts(COMPILED["svg"], d) is None for d in cut) < len(cut), cut
    for document in documents(root, budget=120) + documents(root + "<g>\n" * 10, budget=200, new=200):
        assert library.accepts(COMPILED["svg"], document) is None, document
    assert "closing in time" in str(forms.key_inputs(_Spec({"generate.constrain": "svg"}))["constrain svg"])
