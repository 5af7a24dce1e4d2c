"""Heuristic quality rules: each rule on planted failing and passing rows, the score, the API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quality.heuristics import RULES, RuleResult, describe_rules, evaluate, evaluate_batch

SEVERE = (
    "empty_response",
    "unclear_instruction",
    "short_response",
    "truncated_response",
    "repeats_instruction",
    "ngram_repetition",
    "junk_characters",
    "markup_mojibake",
    "language_mismatch",
)

PHOTO = "Explain how photosynthesis works in plants."
SKY = "Explain why the sky is blue during the day and red at sunset."
SKY_EN = (
    "Sunlight is scattered by the molecules of the air, and blue light, with its short "
    "wavelength, is scattered much more than red light. At sunset the light crosses more "
    "air, so the blue is scattered away and the reds remain."
)

# (prompt, response) rows that fail exactly the named rule; the comment says why.
FAILING = {
    "empty_response": [
        ("What is the capital of France?", ""),
        ("What is the capital of France?", "   -  "),  # no letter or digit
        ("What is the capital of France?", "N/A"),
        ("Name a fruit.", "<nooutput>"),
        ("What is the capital of France?", "I don't know."),
        ("What is the capital of Peru?", "TODO"),
    ],
    "short_response": [
        ("Write a short story about a dragon who learns to fly.", "Dragons fly."),
        ("Describe the water cycle in detail.", "Evaporation."),
        ("Write a poem about rain.", "Sure."),  # an acknowledgement answers nothing
        # ...even when the task has a short-answer cue ("correct")
        ("Correct the grammar in this sentence.\n\nshe go to school by bus", "Thanks!"),
        ("Can you write a poem about the sea?", "Of course, will do!"),  # a request
    ],
    "truncated_response": [
        (
            PHOTO,
            "Photosynthesis is the process by which plants turn light, water and carbon "
            "dioxide into sugar and",
        ),  # dangling conjunction
        (PHOTO, "Photosynthesis happens in the following steps:"),  # dangling colon
        (PHOTO, "Plants make sugars (such as glucose from light, water and carbon dioxide."),
        (
            PHOTO,
            'As the textbook puts it, "plants turn the energy of light into chemical energy '
            "stored in sugar",
        ),  # cut after a noun, inside a quotation
        (
            "Hugo shares 360 stamps equally among 12 friends. How many does each get?",
            "Sharing equally means dividing the total by the number of friends: 360 ÷ 12 =",
        ),  # a trailing operator
        (PHOTO, "Photosynthesis takes place in the chloroplasts of leaf cells, which"),
        (
            "Write a Python function that adds two numbers.",
            "```python\ndef add(a, b):\n    return a + b\n",
        ),  # unclosed code fence
    ],
    "unclear_instruction": [
        ("pls", "Sure, how can I help you today?"),
        ("?", "Could you clarify your question?"),
        ("how u", "I am fine, thank you for asking."),
    ],
    "repeats_instruction": [
        (
            "Write a poem about the sea and the sky at night.",
            "Sure! Write a poem about the sea and the sky at night.",
        ),
        (
            "Summarize the main causes of the French Revolution in a paragraph.\n\nSome text.",
            "Summarize the main causes of the French Revolution in a paragraph.",
        ),
        (  # the instruction and its input, copied back
            "Correct the grammar in this sentence.\n\nmy brother visit the museum on Sundays "
            "and walk the dog near the river.",
            "Correct the grammar in this sentence.\nmy brother visit the museum on Sundays and "
            "walk the dog near the river.",
        ),
    ],
    "ngram_repetition": [
        (
            "Give me a tip for studying.",
            "I think the best tip is to study a little every day. " * 6,
        ),
        (
            "Give me a tip for studying.",  # a base model looping on few-shot examples
            "Take short breaks.\n" + "Input: a tip for sleeping\nOutput: Go to bed early.\n" * 5,
        ),
        (
            "Give me a tip for studying.",  # a loop hidden behind counters
            "".join(f"{i}. Click on the Document Content button.\n" for i in range(1, 30)),
        ),
    ],
    "junk_characters": [
        ("What is the boiling point of water?", "Water boils at 100 degrees at sea level.\x00\x00"),
        ("What is the boiling point of water?", "Water boils at 100 \ufffd\ufffdC at sea level."),
        (
            "What is the boiling point of water?",
            "W@t#r b%^ls @t 1*0 d#g!!! ~~ {{[[<<>>]]}} ^^ $$ ?!",
        ),
    ],
    "markup_mojibake": [
        ("Where did you eat?", "The cafÃ© was nice and the â€œfoodâ€ was great."),
        ("What is the capital of France?", "<p>Paris is the capital of France.</p><br>"),
        ("Name two capitals.", "Paris&nbsp;and Berlin are two capitals."),
    ],
    "unvisitable_url": [
        (
            "What is the boiling point of water?",
            "Water boils at 100 °C at sea level; see https://en.wikipedia.org/wiki/Boiling_point.",
        ),
        (  # the site is "bbc", not "co" (which "could" and "coverage" contain)
            "Could you recommend a source for coverage of UK politics?",
            "The latest analysis is at https://www.bbc.co.uk/news/uk-politics-61234567.",
        ),
    ],
    "language_mismatch": [
        (
            SKY,
            "El cielo es azul porque la luz del sol se dispersa en la atmósfera, y los colores "
            "de onda corta se dispersan más que los demás.",
        ),
        (
            SKY,
            "Небо голубое, потому что солнечный свет рассеивается в атмосфере, и короткие "
            "волны рассеиваются сильнее, чем длинные.",
        ),
    ],
}

# Rows that look like a failure of the named rule at first sight but are fine.
PASSING = {
    "empty_response": [
        ("What is the capital of France?", "Paris."),
        ("Describe your mood with emojis.", "😻🤪🐱"),  # pictographs are content
    ],
    "short_response": [
        ("Classify the sentiment of this review: 'I loved every minute of it!'", "Positive"),
        ("How many legs does a spider have?", "8"),
        ("Is the Earth round?", "Yes."),
        ("Who wrote Hamlet?", "Shakespeare"),
        ("Translate 'thank you' into French.", "Merci"),
        ("Can you swim?", "Of course."),  # a yes/no question takes a bare yes
        ("Is Paris the capital of France?", "Certainly!"),
        ("Thanks for your help!", "You're welcome!"),  # small talk
        ("Reply with OK if you understand the rules.", "OK"),  # the words asked for
    ],
    "truncated_response": [
        ("List three fruits.", "- apples\n- bananas\n- cherries"),  # lists end bare
        (PHOTO, "Photosynthesis converts light energy into chemical energy stored in sugars"),
        (
            "Write a polite reply declining a meeting.",
            "Hello Sam,\n\nThank you for the invitation. I cannot attend on Friday, but I hope the "
            "meeting goes well.\n\nBest regards,",
        ),  # a sign-off, not a cut
        (
            "Write a C function returning the larger of two ints.",
            "int max(int a, int b) {\n    if (a > b) {\n        return a;\n    }\n    return b;\n}",
        ),
        (
            "Write a JavaScript check for an open parenthesis.",
            "function isOpen(c) {\n  return c === '(';\n}",
        ),  # quoted bracket
        (
            "Who wrote the line about thinking and existing?",
            'René Descartes wrote "I think, therefore I am" in his Discourse on the Method',
        ),  # quotation closed, a well-formed answer without a final stop
        ("Which vitamin helps night vision?", "The vitamin most important for night vision is A"),
        ("How tall is a standard door?", 'A standard interior door is 80" tall in most homes'),
        (
            "Write a shell command that deletes all .log files below this directory.",
            "find . -type f -name '*.log' -exec rm -f {} +",
        ),  # "+" ends the -exec, no operator left hanging
    ],
    "unclear_instruction": [
        ("Define entropy.", "Entropy measures the number of microstates of a macrostate."),
        ("What is the capital of France?", "Paris is the capital of France."),
    ],
    "repeats_instruction": [
        (
            "What is the largest state by land size in the United States?",
            "The largest state by land size in the United States is Alaska.",
        ),
        (
            "Rewrite the sentence in the passive voice.\n\nThe cat chased the mouse across the "
            "kitchen floor.",
            "The mouse was chased across the kitchen floor by the cat.",
        ),
        (  # an answer copied from the input, without the instruction (extraction)
            "What is the Daisy Bates House\n\nThe Daisy Bates House is a historic house in Little "
            "Rock, Arkansas. It was the home of Daisy Bates, a civil rights leader.",
            "The Daisy Bates House is a historic house in Little Rock, Arkansas. It was the home "
            "of Daisy Bates, a civil rights leader.",
        ),
    ],
    "ngram_repetition": [
        (
            "Tell me whether these are cheese or bread: Brie, Pita, Gouda, Focaccia, Cheddar",
            "Brie is a type of cheese.\nPita is a type of bread.\nGouda is a type of cheese.\n"
            "Focaccia is a type of bread.\nCheddar is a type of cheese.",
        ),  # a template, no loop
        ("What does 1/3 equal as a decimal?", "0.3333333333333333"),
    ],
    "junk_characters": [
        (
            "Write a regex that matches an IPv4 octet.",
            "^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$",
        ),
        (
            "Design a table for tracking subscriptions.",
            "Name | Cost | Start\n-----|------|------\n     |      |      \n     |      |      ",
        ),
    ],
    "markup_mojibake": [
        ("Write an HTML paragraph that says hello.", "<p>Hello!</p>"),
        ("Where did you eat?", "At a small café in Montmartre, and the food was excellent."),
    ],
    "unvisitable_url": [
        (
            "Summarize the post at https://blog.acme.io/post-1 in one line.",
            "The post at https://blog.acme.io/post-1 argues that tests should plant answers.",
        ),
        (
            "Write a Flask hello-world app.",
            "from flask import Flask\napp = Flask(__name__)\n\n@app.route('/')\ndef hello():\n"
            "    return 'Hello'\n\n# then open http://localhost:5000/ in a browser",
        ),
        ("Where can I read BBC news?", "Go to https://www.bbc.co.uk/news/uk for the headlines."),
        ("Where can I read more about tau?", "The case for tau is made at https://tauday.com/."),
        (  # an endpoint the code calls, not a page cited
            "Write a Python snippet that downloads one trivia question.",
            "import requests\n\nresponse = requests.get('https://opentdb.com/api.php?amount=1')"
            "\nprint(response.json()['results'][0]['question'])",
        ),
        (  # a tool call's argument
            "What is on the front page of The Guardian today?",
            "The text of the front page is request('https://www.theguardian.com/international').",
        ),
    ],
    "language_mismatch": [
        (SKY, SKY_EN),
        (
            "Translate into Spanish: The sky is blue because sunlight is scattered by the air.",
            "El cielo es azul porque la luz del sol se dispersa en el aire y los colores de onda "
            "corta se dispersan más.",
        ),
        ("Say hello.", "Hola amigo."),  # too short to tell
    ],
}

CLEAN = [
    (SKY, SKY_EN),
    ("What is the capital of Australia?", "The capital of Australia is Canberra."),
    (
        "Write a Python function that returns the square of a number.",
        "def square(x):\n    return x * x\n\nprint(square(4))  # 16",
    ),
    (
        "Give three tips for better sleep.",
        "1. Keep a regular schedule, even at weekends.\n2. Avoid screens for an hour before bed."
        "\n3. Keep the bedroom cool, dark and quiet.",
    ),
]


def _cases(table: dict[str, list[tuple[str, str]]]) -> list:
    return [
        pytest.param(name, p, r, id=f"{name}-{i}")
        for name, rows in table.items()
        for i, (p, r) in enumerate(rows)
    ]


def test_registry_has_the_required_rules_in_a_stable_order():
    assert list(RULES) == [
        "empty_response",
        "unclear_instruction",
        "short_response",
        "truncated_response",
        "repeats_instruction",
        "ngram_repetition",
        "junk_characters",
        "markup_mojibake",
        "unvisitable_url",
        "language_mismatch",
    ]
    assert set(FAILING) == set(PASSING) == set(RULES)


@pytest.mark.parametrize(("name", "prompt", "response"), _cases(FAILING))
def test_planted_failure_is_caught_by_its_rule(name, prompt, response):
    rule = RULES[name]
    assert rule.check(prompt, response, rule.threshold)
    result = evaluate(prompt, response)
    assert result.failed == (name,)
    assert result.reason == name


def test_reason_is_the_heaviest_failed_rule():
    # a looping answer that is also cut off ("... and") fails two rules
    loop = "I think the best tip is to study a little every day, " * 6 + "and"
    result = evaluate("Give me a tip for studying.", loop)
    assert result.failed == ("truncated_response", "ngram_repetition")  # registry order
    assert RULES["ngram_repetition"].weight > RULES["truncated_response"].weight
    assert result.reason == "ngram_repetition"


@pytest.mark.parametrize(("name", "prompt", "response"), _cases(PASSING))
def test_planted_lookalike_passes_its_rule(name, prompt, response):
    rule = RULES[name]
    assert not rule.check(prompt, response, rule.threshold)
    assert name not in evaluate(prompt, response).failed


@pytest.mark.parametrize(("prompt", "response"), CLEAN)
def test_clean_rows_fail_nothing_and_score_well_above_min_score(prompt, response):
    result = evaluate(prompt, response)
    assert result == RuleResult(result.score, (), None)
    assert result.score > 0.75


@pytest.mark.parametrize("name", SEVERE)
def test_a_severe_rule_alone_drops_the_row(name):
    assert RULES[name].weight > 0.5  # even a perfect base score of 1 ends below 0.5
    for prompt, response in FAILING[name]:
        result = evaluate(prompt, response)
        assert result.score < 0.5, (name, response)


def test_score_is_a_continuous_signal_among_passing_rows():
    terse = evaluate(SKY, "Air scatters blue light more than red light.")
    full = evaluate(SKY, SKY_EN)
    # repeats one clause: a little repetition, well under the rule's threshold
    repetitive = evaluate(SKY, SKY_EN + " Sunlight is scattered by the molecules of the air.")
    assert terse.failed == full.failed == repetitive.failed == ()
    assert 0.5 < terse.score < full.score
    assert repetitive.score < full.score


def test_thresholds_override_changes_the_verdict():
    prompt, response = "Describe the water cycle.", "Water evaporates, condenses and falls."
    assert "short_response" not in evaluate(prompt, response).failed
    assert "short_response" in evaluate(prompt, response, thresholds={"short_response": 10}).failed
    url_row = FAILING["unvisitable_url"][0]
    assert evaluate(*url_row, thresholds={"unvisitable_url": 2}).failed == ()


def test_weights_override_and_weight_zero_disables_a_rule():
    prompt, response = FAILING["ngram_repetition"][0]
    default = evaluate(prompt, response)
    lighter = evaluate(prompt, response, weights={"ngram_repetition": 0.1})
    off = evaluate(prompt, response, weights={"ngram_repetition": 0.0})
    assert default.score < lighter.score < off.score
    assert off.failed == () and off.reason is None


@pytest.mark.parametrize("arg", ["thresholds", "weights"])
def test_unknown_rule_name_is_rejected_with_the_known_ones(arg):
    with pytest.raises(ValueError, match="no_such_rule") as info:
        evaluate("Define entropy.", "Entropy is disorder.", **{arg: {"no_such_rule": 1.0}})
    assert "empty_response" in str(info.value) and "language_mismatch" in str(info.value)
    with pytest.raises(ValueError, match="no_such_rule"):
        evaluate_batch(["a"], ["b"], **{arg: {"no_such_rule": 1.0}})


def test_weight_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="short_response"):
        evaluate("Define entropy.", "Entropy is disorder.", weights={"short_response": 1.5})


def test_scores_stay_in_bounds_on_odd_inputs():
    rows = [(p, r) for table in (FAILING, PASSING) for rs in table.values() for p, r in rs]
    rows += [("", ""), ("x" * 5000, "y" * 5000), ("\n\n", "\x00"), ("é" * 50, "ü " * 400)]
    scores, failed, reasons = evaluate_batch([p for p, _ in rows], [r for _, r in rows])
    assert scores.dtype == np.float64 and len(scores) == len(failed) == len(reasons) == len(rows)
    assert np.all((scores >= 0.0) & (scores <= 1.0))


def test_evaluate_batch_matches_evaluate_row_by_row():
    rows = [row for rs in FAILING.values() for row in rs] + CLEAN
    scores, failed, reasons = evaluate_batch([p for p, _ in rows], [r for _, r in rows])
    for i, (prompt, response) in enumerate(rows):
        one = evaluate(prompt, response)
        assert scores[i] == pytest.approx(one.score)
        assert tuple(failed[i]) == one.failed and reasons[i] == one.reason
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        evaluate_batch(["a", "b"], ["c"])


def test_describe_rules_lists_every_rule_with_its_defaults():
    described = describe_rules()
    assert [d["name"] for d in described] == list(RULES)
    for d in described:
        rule = RULES[d["name"]]
        assert d == {
            "name": rule.name,
            "description": rule.description,
            "threshold": rule.threshold,
            "weight": rule.weight,
        }
        assert len(d["description"]) > 20 and 0.0 < d["weight"] <= 1.0


def _self_instruct(path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.open()]
    prompts = [
        r["instruction"].strip() + ("\n\n" + r["input"] if r["input"].strip() else "") for r in rows
    ]
    return prompts, [r["response"] for r in rows]


def test_score_ranks_strong_answers_above_weak_ones_on_self_instruct(shared_data):
    # Same 252 tasks answered by text-davinci-003 (strong) and davinci (weak); ~1 s.
    base = shared_data / "self_instruct"
    strong, _, _ = evaluate_batch(*_self_instruct(base / "text-davinci-003_predictions.jsonl"))
    weak, _, _ = evaluate_batch(*_self_instruct(base / "davinci_predictions.jsonl"))
    # ROC AUC: the chance that a strong answer outscores a weak one (ties count half).
    auc = (strong[:, None] > weak[None, :]).mean() + 0.5 * (strong[:, None] == weak[None, :]).mean()
    assert auc >= 0.75, auc


def test_a_conversation_scores_as_its_worst_assistant_turn():
    from quality.heuristics import evaluate_conversations

    good = (SKY, SKY_EN)
    bad = (SKY, "N/A")  # an empty placeholder answer in the first turn
    follow_up = (f"{SKY}\n\nN/A\n\nPlease answer properly.", SKY_EN)
    scores, failed, reasons = evaluate_conversations([[good], [bad, follow_up]])
    single, single_failed, single_reasons = evaluate_batch([SKY], [SKY_EN])
    assert scores[0] == single[0] and failed[0] == single_failed[0]  # one turn: unchanged
    assert scores[1] == evaluate(*bad).score < 0.5  # the placeholder turn decides
    assert "empty_response" in failed[1] and reasons[1] == "empty_response"
    with pytest.raises(ValueError, match="no assistant turn"):
        evaluate_conversations([[]])
