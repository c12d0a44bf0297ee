"""The llm and vlm proposers over real HTTP (scripted OpenAI-compatible server), and the
answer parser on the shapes real models produce."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from tests.fake_openai import FAST_RETRY, Reply
from visdiff.cache_root import CacheRoot
from visdiff.errors import ServiceError
from visdiff.llm import RequestPool
from visdiff.sources import load_image_set
from visdiff.prompts import load_prompt
from visdiff.proposers import ProposalContext, create_proposer, list_proposers
from visdiff.proposers.chat import parse_answer, parse_hypotheses
from visdiff.proposers.vlm import make_grid

# Fixture: fake_openai (a scripted OpenAI-compatible server per test).
pytest_plugins = ["tests.captioner_fixtures", "tests.fake_openai"]


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("* dogs playing\n* snowy scenes", ["dogs playing", "snowy scenes"]),
        ("Here are 3 differences:\n\n1. Red cars\n2) wet streets\n3. night scenes\n\nHope this helps!",
         ["Red cars", "wet streets", "night scenes"]),
        ("**Differences**\n- **Sunsets**: Group A shows many sunsets\n- *Beaches* - sandy shores\n- `Palm trees`",
         ["Sunsets", "Beaches", "Palm trees"]),
        ('- "close-up portraits"\n- \u201cstudio lighting\u201d.\n- \'bokeh\'', ["close-up portraits", "studio lighting", "bokeh"]),
        ("```\n- more of people\n- presence of umbrellas\n- images with rain\n```", ["people", "umbrellas", "rain"]),
        ("- animals (cats, dogs, birds)\n- vehicles such as buses and trams", ["animals", "vehicles"]),
        ("- fewer cars\n- no people\n- Group A has more trees\n- trees", ["trees"]),
        ("- Dogs\n- dogs \n-   DOGS\n- cats", ["Dogs", "cats"]),
        ("red cars, wet streets, night scenes", ["red cars", "wet streets", "night scenes"]),
        ("Sunsets\nBeaches\n\nPalm trees", ["Sunsets", "Beaches", "Palm trees"]),
        ("", []),
        ("I'm sorry, but I can't help with that.", []),
        ("Sure! Here is the list you asked for:", []),
        ("- " + " ".join(["word"] * 20), []),
        # An endpoint's error text, markup and courtesies are never hypotheses.
        ("1. red cars\n2. snow\n3. dogs\n4. Error: rate limit exceeded", ["red cars", "snow", "dogs"]),
        ("- HTTP 503 Service Unavailable\n- Internal Server Error\n- sunsets", ["sunsets"]),
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", []),
        ("- <b>dogs</b>\n- <div class='x'>cats</div>\n- birds", ["birds"]),
        ("Sunsets\nBeaches\n\nHope this helps!", ["Sunsets", "Beaches"]),
        ("- red cars\n- Let me know if you need more\n- Thanks!\n- snow", ["red cars", "snow"]),
    ],
)
def test_parse_hypotheses(answer, expected):
    assert parse_hypotheses(answer) == expected


def test_parse_answer_lists_every_dropped_line_with_its_reason():
    parsed = parse_answer("Here you go:\n1. Snow\n2. snow\n3. Error: quota exceeded\n4. <i>x</i>\n5. fewer cars\nCheers")
    assert parsed.phrases == ["Snow"]
    assert parsed.dropped == [
        ("Here you go:", "not a list item"), ("Cheers", "not a list item"),
        ("Error: quota exceeded", "error message, not a hypothesis"), ("<i>x</i>", "markup, not a hypothesis"),
        ("fewer cars", "negation or comparison a scorer cannot score"), ("snow", "duplicate"),
    ]


def _image_set(n: int, offset: int, name: str):
    return load_image_set([Image.new("RGB", (8, 8), (offset + i, 10, 10)) for i in range(n)], name=name)


class RecordingCaptions:
    """Captioning stage for a ProposalContext: fixed labels, records each call's set size."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.calls: list[int] = []

    def caption(self, image_set):
        self.calls.append(len(image_set))
        return {k: self.labels[k] for k in image_set.keys}


@pytest.fixture
def context():
    set_a, set_b = _image_set(25, 0, "A"), _image_set(25, 100, "B")
    labels = {**{k: f"a-caption-{i}" for i, k in enumerate(set_a.keys)},
              **{k: f"b-caption-{i}" for i, k in enumerate(set_b.keys)}}
    return ProposalContext(set_a=set_a, set_b=set_b, seed=0, captioning=RecordingCaptions(labels), scoring=None)


def make_llm(server, **options):
    # One request at a time: scripted replies meet the rounds in order.
    return create_proposer("llm:fake-model", base_url=server.base_url, max_retries=1, llm_pool=RequestPool(1), **options)


def test_backends_are_registered():
    assert {"llm", "vlm"} <= set(list_proposers())


def test_llm_rounds_sample_captions_and_merge(fake_openai, context):
    fake_openai.replies += [Reply("* red cars\n* snow"), Reply("1. Snow\n2. dogs"), Reply("- red  cars\n- night")]
    proposer = make_llm(fake_openai)
    assert proposer.propose(context) == ["red cars", "snow", "dogs", "night"]
    assert len(fake_openai.requests) == 3
    for request in fake_openai.requests:
        prompt = request.last_user_text
        assert len(re.findall(r"^- a-caption-\d+$", prompt, re.M)) == 20
        assert len(re.findall(r"^- b-caption-\d+$", prompt, re.M)) == 20
        assert "Give 10 such concepts" in prompt
    # Only the sampled images are captioned: 20 of A and 20 of B per round.
    assert context.captioning.calls == [20, 20] * 3
    prompts = [r.last_user_text for r in fake_openai.requests]
    assert len(set(prompts)) == 3  # each round draws a new sample
    assert [r.body["seed"] for r in fake_openai.requests] == [0, 1, 2]


def test_llm_sampling_is_seeded(fake_openai, context):
    fake_openai.respond = lambda request: Reply("* snow")
    make_llm(fake_openai, rounds=1).propose(context)
    make_llm(fake_openai, rounds=1).propose(context)
    make_llm(fake_openai, rounds=1).propose(ProposalContext(**{**context.__dict__, "seed": 7}))
    first, again, other = (r.last_user_text for r in fake_openai.requests)
    assert first == again and first != other


def test_settings_are_honoured_and_recorded(fake_openai, context):
    fake_openai.respond = lambda request: Reply("* snow")
    proposer = make_llm(fake_openai, rounds=2, samples_per_set=5, n_hypotheses=4, temperature=0.2)
    proposer.propose(context)
    assert len(fake_openai.requests) == 2
    assert len(re.findall(r"^- a-caption", fake_openai.requests[0].last_user_text, re.M)) == 5
    assert fake_openai.requests[0].body["temperature"] == 0.2
    record = proposer.describe()
    assert record["prompt"] == "propose" and len(record["prompt_sha256"]) == 64
    assert record["model"] == "fake-model" and record["rounds"] == 2 and record["samples_per_set"] == 5


def test_rerun_is_served_from_cache(fake_openai, context, tmp_path):
    fake_openai.replies += [Reply("* a"), Reply("* b"), Reply("* c")]
    first = make_llm(fake_openai, cache=CacheRoot(tmp_path)).propose(context)
    assert make_llm(fake_openai, cache=CacheRoot(tmp_path)).propose(context) == first == ["a", "b", "c"]
    assert len(fake_openai.requests) == 3


def test_unusable_answer_is_retried_once_with_a_reminder(fake_openai, context):
    fake_openai.replies += [Reply(""), Reply("* snow"), Reply("Sorry, I cannot do that."), Reply("- dogs")]
    assert make_llm(fake_openai, rounds=2).propose(context) == ["snow", "dogs"]
    assert len(fake_openai.requests) == 4
    retry = fake_openai.requests[1]
    assert retry.last_user_text.endswith("and nothing before or after it.")
    assert retry.body["messages"][-1]["role"] == "user" and len(retry.body["messages"]) == 1


def test_a_round_that_stays_unusable_is_skipped_with_a_warning(fake_openai, context, caplog):
    fake_openai.replies += [Reply(""), Reply(""), Reply("* snow")]
    assert make_llm(fake_openai, rounds=2).propose(context) == ["snow"]
    assert "round 1 of 2" in caplog.text and "no usable list" in caplog.text


def test_all_rounds_unusable_is_a_service_error(fake_openai, context):
    fake_openai.respond = lambda request: Reply("Here you go:")
    with pytest.raises(ServiceError, match=r"no usable hypotheses in 3 round\(s\).*'Here you go:'"):
        make_llm(fake_openai).propose(context)
    assert len(fake_openai.requests) == 6


def test_server_failure_is_a_service_error(fake_openai, context):
    fake_openai.respond = lambda request: Reply(status=500, content="overloaded", headers=FAST_RETRY)
    with pytest.raises(ServiceError, match="HTTP 500 after 1 retries: overloaded"):
        make_llm(fake_openai).propose(context)


def test_make_grid_stacks_labelled_bands_of_two_rows():
    grid = make_grid([Image.new("RGB", (30, 20), "red")] * 7, [Image.new("RGB", (20, 30), "blue")] * 3, cell=16)
    # 4 columns hold A's 7 images in 2 rows; band B: 1 row; 4 px rule between.
    assert grid.size == (64 + 4 * 24, (2 * 24 + 8) + (24 + 8) + 4)
    assert grid.getpixel((64 + 8, 8 + 8))[0] > 200  # a red cell in band A
    assert grid.getpixel((64 + 8, 2 * 24 + 8 + 4 + 8 + 8))[2] > 200  # a blue cell in band B


def test_the_papers_20_and_20_images_fill_four_rows():
    grid = make_grid([Image.new("RGB", (8, 8), "red")] * 20, [Image.new("RGB", (8, 8), "blue")] * 20, cell=16)
    assert grid.size == (64 + 10 * 24, 2 * (2 * 24 + 8) + 4)


def test_vlm_sends_one_grid_image_per_round(fake_openai, context):
    fake_openai.replies += [Reply("* bright colors"), Reply("* dark scenes")]
    proposer = create_proposer("vlm:vision-model", base_url=fake_openai.base_url, rounds=2, samples_per_set=4,
                               llm_pool=RequestPool(1))
    assert proposer.propose(context) == ["bright colors", "dark scenes"]
    content = fake_openai.requests[0].body["messages"][0]["content"]
    assert "band marked \"A\"" in content[0]["text"]
    url = content[1]["image_url"]["url"]
    grid = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert grid.size == (64 + 2 * 200, 2 * (2 * 200 + 8) + 4)  # 4 images a set: 2 rows of 2
    assert context.captioning.calls == []  # the vlm proposer never captions


def test_paper_settings_send_a_system_message_and_no_temperature_tokens_or_seed(fake_openai, context):
    from visdiff.options import RunOptions

    fake_openai.respond = lambda request: Reply("* a dog next to a horse\n* snow")
    settings = RunOptions(profile="paper").chat_settings()
    assert settings == {"goal": None, "temperature": None, "max_tokens": None, "send_seed": False, "system_message": None,
                        "prompts": "paper"}
    proposer = make_llm(fake_openai, rounds=1, **settings)
    assert proposer.propose(context) == ["a dog next to a horse", "snow"]  # relational phrases survive parsing
    body = fake_openai.requests[0].body
    assert not {"temperature", "max_tokens", "seed"} & set(body)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == load_prompt("system", "paper").text.strip()
    assert "more likely to be true of the Group A images" in body["messages"][1]["content"]
    record = proposer.describe()
    assert record["prompt_set"] == "paper" and record["prompt_sha256"] == load_prompt("propose", "paper").sha256
    assert record["system_sha256"] == load_prompt("system", "paper").sha256
    assert (record["temperature"], record["max_tokens"], record["send_seed"]) == (None, None, False)


def test_every_generation_setting_can_be_given(fake_openai, context):
    from visdiff.options import RunOptions

    fake_openai.respond = lambda request: Reply("* snow")
    options = RunOptions(profile="paper", temperature="0.3", max_tokens=100, system_message="Be brief.", llm_seed=True)
    make_llm(fake_openai, rounds=1, **options.chat_settings()).propose(context)
    body = fake_openai.requests[0].body
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.3, 100, 0)
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    # "" sends no system message; "default" sends no temperature.
    make_llm(fake_openai, rounds=1, **options.replace(system_message="", temperature="default").chat_settings()).propose(context)
    body = fake_openai.requests[1].body
    assert [m["role"] for m in body["messages"]] == ["user"] and "temperature" not in body


def test_the_default_profiles_keep_visdiffs_own_settings():
    from visdiff.options import RunOptions

    for profile in ("offline", "laptop"):
        assert RunOptions(profile=profile).chat_settings() == {
            "goal": None, "temperature": 0.7, "max_tokens": 512, "send_seed": True, "system_message": None,
            "prompts": "strict"}
        assert RunOptions(profile=profile).caption_decoding("blip2") == {}


@pytest.mark.parametrize("keywords, message", [
    ({"temperature": "hot"}, "temperature must be a number or 'default'"),
    ({"temperature": 3.0}, "temperature must be between 0 and 2"),
    ({"max_tokens": 0}, "max_tokens must be a whole number >= 1"),
    ({"caption_beams": 2, "caption_temperature": 0.5}, "exclude each other"),
    ({"prompts": "papr"}, "unknown prompt set 'papr'; choose one of: paper, strict"),
])
def test_bad_generation_settings_are_usage_errors(keywords, message):
    from visdiff.errors import InputError
    from visdiff.options import RunOptions

    with pytest.raises(InputError, match=message):
        RunOptions(**keywords)


def test_each_round_records_what_was_shown_sent_answered_and_dropped(fake_openai, context):
    fake_openai.replies += [Reply("Sure:\n* snow\n* fewer cars"), Reply(""), Reply("* dogs")]
    proposer = make_llm(fake_openai, rounds=2, samples_per_set=3)
    proposer.propose(context)
    first, second = context.rounds
    assert first["round"] == 1 and first["proposer"] == "llm:fake-model"
    assert len(first["images_a"]) == 3 and set(first["images_a"][0]) == {"key", "source"}
    keys_a = [image["key"] for image in first["images_a"]]
    assert list(first["captions_a"]) == keys_a and all(c.startswith("a-caption-") for c in first["captions_a"].values())
    [request] = first["requests"]
    assert request["messages"] == fake_openai.requests[0].body["messages"]  # the exact text sent
    for caption in first["captions_b"].values():
        assert f"- {caption}\n" in request["messages"][0]["content"] + "\n"
    assert request["answer"] == "Sure:\n* snow\n* fewer cars" and request["phrases"] == ["snow"]
    assert request["dropped"] == [{"line": "Sure:", "reason": "not a list item"},
                                  {"line": "fewer cars", "reason": "negation or comparison a scorer cannot score"}]
    # An unusable answer and its reminder are both on record.
    assert [r["answer"] for r in second["requests"]] == ["", "* dogs"]
    assert second["requests"][1]["messages"][0]["content"].endswith("and nothing before or after it.")


def test_vlm_rounds_record_the_sampled_images_not_the_grid(fake_openai, context):
    fake_openai.replies += [Reply("* bright colors")]
    create_proposer("vlm:vision-model", base_url=fake_openai.base_url, rounds=1, samples_per_set=2).propose(context)
    [record] = context.rounds
    assert len(record["images_a"]) == 2 and "captions_a" not in record
    content = record["requests"][0]["messages"][0]["content"]
    assert content[0]["type"] == "text" and content[1] == {"type": "image_url", "note": "image omitted from the record"}


def test_generation_settings_come_from_the_command_line():
    from visdiff.cli.options import run_options

    options = run_options({"profile": "laptop", "prompts": "paper", "temperature": "default", "max_tokens": "64",
                           "system_message": "", "llm_seed": False, "caption_beams": 5, "caption_max_tokens": 30},
                          quiet=True, command="visdiff compare")
    assert options.chat_settings() == {"goal": None, "temperature": None, "max_tokens": 64, "send_seed": False,
                                       "system_message": "", "prompts": "paper"}
    assert options.caption_decoding("blip2") == {"num_beams": 5, "max_new_tokens": 30}
    assert {"prompts": "paper", "temperature": "default", "caption_beams": 5}.items() <= options.identity().items()


def test_hypotheses_option_sets_how_many_are_asked_per_round(fake_openai, context):
    from visdiff.options import RunOptions
    from visdiff.stages import RunStages

    fake_openai.respond = lambda request: Reply("* snow")
    stages = RunStages(RunOptions(llm="fake-model", base_url=fake_openai.base_url, hypotheses=4, rounds=1,
                                  show_progress=False), proposing=True)
    assert stages.proposer.n_hypotheses == 4 and stages.proposer.describe()["n_hypotheses"] == 4
    stages.proposer.propose(context)
    assert "Give 4 such concepts." in fake_openai.requests[0].last_user_text


def sized_context(n_a: int, n_b: int) -> ProposalContext:
    set_a, set_b = _image_set(n_a, 0, "A"), _image_set(n_b, 100, "B")
    labels = {k: f"caption-{i}" for i, k in enumerate([*set_a.keys, *set_b.keys])}
    return ProposalContext(set_a=set_a, set_b=set_b, seed=0, captioning=RecordingCaptions(labels), scoring=None)


def test_sets_no_larger_than_a_sample_get_one_round_said_in_one_line(fake_openai, caplog):
    small = sized_context(6, 5)
    fake_openai.respond = lambda request: Reply("* snow")
    assert make_llm(fake_openai, rounds=3, samples_per_set=6).propose(small) == ["snow"]
    assert len(fake_openai.requests) == 1 and len(small.rounds) == 1
    [line] = [r.getMessage() for r in caplog.records if "proposal round" in r.getMessage()]
    assert line == ("one proposal round, not 3: sets A and B have 6 and 5 images, no more than the 6 sampled per "
                    "round, so every round would show them all")
    bigger = sized_context(7, 5)
    make_llm(fake_openai, rounds=3, samples_per_set=6).propose(bigger)  # A's samples differ: every round asked
    assert len(fake_openai.requests) == 4 and len(bigger.rounds) == 3


@pytest.mark.parametrize("fixture", ["tiny_blip2_opt", "tiny_blip2_t5"])
def test_the_feature_proposer_decodes_the_difference_of_mean_blip2_features(fixture, request, context):
    from visdiff.proposers.feature import FeatureProposer

    proposer = FeatureProposer(str(request.getfixturevalue(fixture)), rounds=2, samples_per_set=2, n_hypotheses=3,
                               device="cpu")
    phrases = proposer.propose(context)
    assert len(phrases) == 6 and all(isinstance(p, str) for p in phrases)
    assert [r["round"] for r in context.rounds] == [0, 1] and len(context.rounds[0]["images_a"]) == 2
    _, model = proposer._load()
    # The image inputs are the mean features of A's sample minus those of B's: zero for one set against itself.
    same = proposer._mean_features(context.set_a) - proposer._mean_features(context.set_a)
    assert same.shape == (model.config.num_query_tokens, model.config.text_config.hidden_size) and not same.any()
    assert context.captioning.calls == []  # no captions, no LLM


def test_the_feature_proposer_is_built_from_the_run_options(tiny_blip2_opt):
    from visdiff.llm import RequestPool
    from visdiff.options import RunOptions
    from visdiff.stages import build_proposer

    proposer = build_proposer(RunOptions(proposer=f"blip2-feature:{tiny_blip2_opt}", rounds=2, samples_per_set=5,
                                         hypotheses=4, device="cpu"), cache=None, llm_pool=RequestPool(1))
    assert (proposer.rounds, proposer.samples_per_set, proposer.n_hypotheses) == (2, 5, 4)


@pytest.mark.parametrize("prompts", ["strict", "paper"])
def test_a_goal_goes_into_every_proposal_and_refinement_request(prompts, fake_openai, context):
    from visdiff.options import RunOptions

    fake_openai.respond = lambda request: Reply("* dogs in snow\n* sleds")
    settings = RunOptions(llm="m", prompts=prompts, goal="why does the classifier fail on A?").chat_settings()
    proposer = make_llm(fake_openai, rounds=2, **settings)
    assert proposer.propose(context) == ["dogs in snow", "sleds"]
    proposer.refine(hypotheses=[("dogs in snow", 0.8)], captions_a={"k": "a dog"}, captions_b={"j": "a cat"},
                    seed=0, round_index=0)
    assert len(fake_openai.requests) == 3
    for request in fake_openai.requests:
        assert request.last_user_text.endswith('question behind this comparison: "why does the classifier fail on A?". '
                                               "Prefer concepts that help answer it.")
    assert proposer.describe()["goal"].startswith("The researcher's question")


def test_without_a_goal_the_prompts_are_as_before(fake_openai, context):
    fake_openai.respond = lambda request: Reply("* dogs")
    make_llm(fake_openai, rounds=1).propose(context)
    assert "question behind this comparison" not in fake_openai.requests[0].last_user_text
