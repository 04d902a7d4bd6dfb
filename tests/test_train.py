"""Training stages on TRL: a short toy run of every stage, run records, freezing, LoRA, resume, the
paper dry run, and a real 2-process DDP job."""
import json
import os
import signal
import shutil
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import training_copy
from tinyrs.data.vhm import DataError
from tinyrs.train.runs import latest_run, new_run_dir, release, unfinished_runs
from tinyrs.train.stage import load_metrics, run_stage

TINY = ["max_steps=2", "per_device_train_batch_size=4", "logging_steps=1", "save_steps=1"]


@pytest.fixture(scope="module")
def train_env(toy_build, tmp_path_factory):
    """A copy of the small toy build with its CoT captions, a runs folder, and a tiny trained base."""
    root = tmp_path_factory.mktemp("train")
    data = training_copy(toy_build, root / "data")
    runs = root / "runs"
    base = run_stage("base", "toy", overrides=[f"data_dir={data}", "generic.samples=48", *TINY], runs_root=runs,
                     progress=False)
    return {"data": data, "runs": runs, "base": base}


def stage(env, name, *extra, **kw):
    return run_stage(name, "toy", overrides=[f"data_dir={env['data']}", *TINY, *extra], runs_root=env["runs"],
                     progress=False, **kw)


def weights(run):
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def test_base_is_recorded_and_reused(train_env):
    base = train_env["base"]
    record = json.loads((base / "run.json").read_text())
    assert record["stage"] == "base" and record["packages"]["trl"] and record["git_commit"]
    assert set(record["inputs"]) >= {"instruct.json"} and all(v["sha256"] for v in record["inputs"].values())
    assert (base / "generic" / "generic.json").exists() and (base / "checkpoint" / "tokenizer.json").exists()
    again = run_stage("base", "toy", overrides=[f"data_dir={train_env['data']}", "generic.samples=48", *TINY],
                      runs_root=train_env["runs"], progress=False)
    assert again == base  # cached: the same recipe, build text and code


def test_a_reused_run_becomes_the_latest_again(train_env, capsys):
    """A chain continues from `latest`: a reused run must be pointed at, or the next stage starts from whatever
    run was trained last (say a quick debug run)."""
    from tinyrs.train.runs import point_latest

    base, runs = train_env["base"], train_env["runs"]
    other = new_run_dir("base", runs)
    try:
        point_latest(other)
        again = run_stage("base", "toy", overrides=[f"data_dir={train_env['data']}", "generic.samples=48", *TINY],
                          runs_root=runs, progress=False)
        assert again == base and (runs / "base" / "latest").resolve() == base.resolve()
        out = capsys.readouterr().out
        assert "reusing finished run" in out and "--force trains again" in out
    finally:
        release(other)
        shutil.rmtree(other)
        point_latest(base)


def test_what_decides_a_run_is_in_its_key(train_env, tmp_path, monkeypatch):
    """The cache key: a checkpoint by all its files (processor and chat template too), hub models by their id,
    stage R's judge, the toy base's model sizes; the default data folder named or not is the same run."""
    from tinyrs import paths
    from tinyrs.train.recipes import load_recipe
    from tinyrs.train.runs import fingerprint
    from tinyrs.train.stage import cache_key, judge_settings

    ckpt = train_env["base"] / "checkpoint"
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(ckpt, a)
    shutil.copytree(ckpt, b)
    assert fingerprint(a) == fingerprint(b) == fingerprint(ckpt)  # by content, wherever it lies
    with open(b / "chat_template.jinja", "a") as f:
        f.write("\n")
    assert fingerprint(b) != fingerprint(a)
    assert None is not fingerprint("org/model-a") != fingerprint("org/model-b")
    r = load_recipe("R", "toy")
    key = cache_key(r, {}, str(a), judge_settings(r))
    assert key != cache_key(r, {}, str(b), judge_settings(r))
    second = load_recipe("R", "toy", ["judge=judge_second"])
    assert cache_key(second, {}, str(a), judge_settings(r)) != cache_key(second, {}, str(a), judge_settings(second))
    named = load_recipe("R", "toy", [f"data_dir={paths.data_dir('toy')}"])
    assert cache_key(named, {}, str(a), judge_settings(named)) == key
    assert judge_settings(load_recipe("S", "toy")) is None
    base = load_recipe("base", "toy")
    assert cache_key(base, {}, None, {"model": {"layers": 4}}) != cache_key(base, {}, None, {"model": {"layers": 2}})
    # the training images by name and size: replaced under the same name, another run; rewritten as they were, not
    from tinyrs.data.build import image_root_of
    from tinyrs.data.vhm import read_json_list, resolve_train_image
    from tinyrs.train.stage import image_stamp

    entries = read_json_list(train_env["data"] / "instruct.json")[:3]
    built, root = image_root_of(train_env["data"]), tmp_path / "images"
    for e in entries:
        source = resolve_train_image(e, built)
        (root / source.relative_to(built)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / source.relative_to(built))
    stamp = image_stamp(entries + entries[:1], root)
    first = resolve_train_image(entries[0], root)
    first.write_bytes(first.read_bytes())  # a rebuild writing the same bytes: a new file time only
    assert image_stamp(entries, root) == stamp
    first.write_bytes(first.read_bytes() + b"\0")  # exported again, another size
    assert image_stamp(entries, root) != stamp


def test_a_run_is_keyed_by_the_code_training_executes_read_as_syntax(tmp_path):
    """A comment, or an edit to code training never imports (the reports), reuses a run; an edit to a reward
    trains again."""
    from tinyrs import paths
    from tinyrs.train.stage import code_fingerprint, training_modules

    pkg = tmp_path / "tinyrs"
    shutil.copytree(paths.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    names = {f.relative_to(pkg).as_posix() for f in training_modules(pkg)}
    assert {"__init__.py", "train/__init__.py", "train/stage.py", "train/recipes.py", "train/base.py", "rewards.py",
            "model.py", "llm.py", "data/hf.py", "world/generic.py"} <= names  # imported inside functions too
    assert not names & {"cli.py", "report/figures.py", "report/claims.py", "evaluation/harness.py", "train/probes.py"}
    before = code_fingerprint(pkg)

    def append(rel, text):
        (pkg / rel).write_text((pkg / rel).read_text() + text)

    append("report/figures.py", "\nEDITED = True\n")
    append("train/stage.py", "\n# a comment\n")
    assert code_fingerprint(pkg) == before
    append("rewards.py", "\nEDITED = True\n")
    assert code_fingerprint(pkg) != before


def test_training_executes_no_package_module_outside_its_code_key(train_env, tmp_path):
    """Whatever stages S and R import while they train (in a fresh process, so nothing else was imported
    before) is among the modules their runs are keyed by: an import added later that the static walk cannot
    see (a dynamic one) would let an edit to it reuse a stale run."""
    code = (f"import sys\nfrom tinyrs.train.stage import run_stage, training_modules\n"
            f"for stage, extra in (('S', []), ('R', ['max_completion_length=8'])):\n"
            f"    run_stage(stage, 'toy', overrides=['data_dir={train_env['data']}', 'init={train_env['base']}', "
            f"*extra, *{TINY!r}], runs_root='{tmp_path}', progress=False)\n"
            f"keyed = {{str(f) for f in training_modules()}}\n"
            f"print([m for m, mod in sys.modules.items() if m.startswith('tinyrs') and getattr(mod, '__file__', None) "
            f"and mod.__file__ not in keyed])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_the_toy_base_refuses_a_distributed_launch(train_env, monkeypatch):
    from tinyrs.config import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="the toy base trains in one process"):
        run_stage("base", "toy", overrides=[f"data_dir={train_env['data']}", *TINY], runs_root=train_env["runs"],
                  reuse=False, progress=False)


def test_supervised_chain_P_S_C(train_env):
    p = stage(train_env, "P", "init=base")
    s = stage(train_env, "S")  # init: P, the latest finished P
    c = stage(train_env, "C")
    for run, init in ((p, train_env["base"]), (s, p), (c, s)):
        record = json.loads((run / "run.json").read_text())
        assert record["init"]["path"] == str(init / "checkpoint") and record["init"]["sha256"]
        assert record["inputs"]["train_file"]["sha256"] and record["seed"] == 0
        assert json.loads((run / "complete.json").read_text())["steps"] == 2
        assert any("loss" in m for m in load_metrics(run))
        assert (run / "checkpoint" / "model.safetensors").exists()
        trained = weights(run)
        assert not any(torch.equal(a, trained[k]) for k, a in weights(init).items() if a.numel() > 1000)
    assert (train_env["runs"] / "C" / "latest").resolve() == c.resolve()
    record = json.loads((c / "run.json").read_text())
    assert record["train_entries"] > len(json.loads((train_env["data"] / "instruct_think.json").read_text()))  # balanced


def test_grpo_stage_logs_rewards_kl_and_lengths(train_env):
    if latest_run("C", train_env["runs"]) is None:
        stage(train_env, "C", "init=base")
    r = stage(train_env, "R", "per_device_train_batch_size=4", "max_completion_length=24")
    logs = [m for m in load_metrics(r) if "reward" in m]
    assert logs and all(k in logs[0] for k in ("rewards/format_reward/mean", "rewards/accuracy_continuous/mean",
                                               "kl", "completions/mean_length"))
    record = json.loads((r / "run.json").read_text())
    # what the GRPOTrainer was built with (every field of its config), not only what the recipe asked for
    assert record["trainer_args"]["temperature"] == 1.0 and record["trainer_args"]["top_k"] == 50
    assert record["trainer_args"]["loss_type"] == "grpo" and record["trainer_args"]["num_generations"] == 4


def test_zero_grpo_from_the_base_and_reward_variants(train_env):
    r = stage(train_env, "R", "init=base", "reward_variant=binary", "grounding_reward=released",
              "judge_failure=released", "max_completion_length=16")
    assert any("rewards/accuracy_binary_released_grounding_released_judge/mean" in m for m in load_metrics(r))
    assert json.loads((r / "run.json").read_text())["init"]["path"] == str(train_env["base"] / "checkpoint")


def test_freezing_the_vision_tower_keeps_it(train_env):
    s = stage(train_env, "S", "init=base", "freeze.vision_tower=true", "freeze.merger=true")
    before, after = weights(train_env["base"]), weights(s)
    vision = [k for k in before if k.startswith("visual.")]  # checkpoints keep Qwen2-VL's original key layout
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("model.layers."))
    assert json.loads((s / "complete.json").read_text())["trainable_parameters"]["vision_tower"] == 0


def test_freeze_counts_parameters_zero3_has_partitioned(train_env):
    """Under ZeRO-3 each process holds an empty tensor per parameter (its size in ds_numel): counted by that,
    not as a model with nothing to train."""
    from tinyrs.model import load_model
    from tinyrs.train.stage import apply_freeze

    model = load_model(train_env["base"] / "checkpoint")
    whole = apply_freeze(model, {"vision_tower": True})
    for p in model.parameters():
        p.ds_numel, p.data = p.numel(), torch.empty(0)
    assert apply_freeze(model, {"vision_tower": True}) == whole and whole["language_model"] > 0


def test_lora_adapters_are_merged_into_a_plain_checkpoint(train_env):
    s = stage(train_env, "S", "init=base", "lora={r: 4, alpha: 8, dropout: 0.0}", "learning_rate=1e-2")
    w = weights(s)
    assert not any("lora" in k for k in w)
    base = weights(train_env["base"])
    assert any(not torch.equal(base[k], w[k]) for k in w if k.endswith("q_proj.weight"))


def test_vision_learning_rate_makes_its_own_param_group(train_env):
    from tinyrs.model import load_model, load_processor
    from tinyrs.train.recipes import load_recipe, trainer_config
    from tinyrs.train.stage import build_trainer, stage_data

    recipe = load_recipe("S", "toy", [f"data_dir={train_env['data']}", "vision_lr=2e-6", "learning_rate=1e-5"])
    entries, data_dir, root, meta = stage_data(recipe, False)
    ckpt = train_env["base"] / "checkpoint"
    args = trainer_config("sft", train_env["runs"] / "tmp", recipe["trainer"])
    trainer = build_trainer(recipe, load_model(ckpt), load_processor(ckpt), args, entries[:8], root, meta, data_dir,
                            train_env["runs"] / "tmp")
    opt = trainer.create_optimizer()
    lrs = {g["lr"] for g in opt.param_groups}
    assert lrs == {2e-6, 1e-5}
    n_vision = sum(p.numel() for g in opt.param_groups if g["lr"] == 2e-6 for p in g["params"])
    assert n_vision == sum(p.numel() for n, p in trainer.model.named_parameters()
                           if n.startswith("model.visual.") and not n.startswith("model.visual.merger."))


def test_released_optimizer_is_one_group_with_the_log_warm_up(train_env):
    """`released_optimizer: true` runs what the released DeepSpeed config did: every parameter in one group at one
    rate (no vision rate), weight decay on biases and norms too, and WarmupLR's log warm-up to a constant rate."""
    import math

    from tinyrs.model import load_model, load_processor
    from tinyrs.train.recipes import load_recipe, trainer_config
    from tinyrs.train.stage import build_trainer, stage_data

    sets = ["vision_lr=2e-6", "learning_rate=1e-5", "weight_decay=0.1", "warmup_steps=4", "released_optimizer=true"]
    recipe = load_recipe("S", "toy", [f"data_dir={train_env['data']}", *sets])
    entries, data_dir, root, meta = stage_data(recipe, False)
    ckpt = train_env["base"] / "checkpoint"
    args = trainer_config("sft", train_env["runs"] / "tmp", recipe["trainer"])
    trainer = build_trainer(recipe, load_model(ckpt), load_processor(ckpt), args, entries[:8], root, meta, data_dir,
                            train_env["runs"] / "tmp")
    [group] = trainer.create_optimizer().param_groups
    assert group["lr"] == 1e-5 and group["weight_decay"] == 0.1
    assert sum(p.numel() for p in group["params"]) == sum(p.numel() for p in trainer.model.parameters())
    run = stage(train_env, "S", *sets, "max_steps=6", "save_steps=6", init=str(train_env["base"]))
    assert json.loads((run / "run.json").read_text())["optimizer"].startswith("released: one AdamW group")
    logged = [m["learning_rate"] for m in load_metrics(run) if "learning_rate" in m]
    # the rate each step ran at (k from 0): log(k) / log(4) of the peak, the first two at 0, the peak from step 4
    assert logged == pytest.approx([1e-5 * min(1.0, math.log(max(k, 1)) / math.log(4)) for k in range(6)])
    assert logged[:2] == [0, 0] and logged[4:] == pytest.approx([1e-5] * 2)


def test_a_deepspeed_config_file_is_part_of_the_launch(tmp_path, monkeypatch):
    """Its optimizer or scheduler block replaces the recipe's: a run launched with another one is another run."""
    from tinyrs.train.stage import launch_settings

    assert launch_settings() is None
    ds = tmp_path / "ds.json"
    ds.write_text('{"zero_optimization": {"stage": 3}}')
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(ds))
    monkeypatch.setenv("WORLD_SIZE", "4")
    first = launch_settings()
    assert first["world_size"] == 4 and first["ACCELERATE_USE_DEEPSPEED"] == "true"
    ds.write_text('{"zero_optimization": {"stage": 3}, "scheduler": {"type": "WarmupLR"}}')
    assert launch_settings()["deepspeed_config"] != first["deepspeed_config"]


def test_schedule_curves_put_the_intended_and_released_rates_side_by_side(tmp_path):
    import math

    from tinyrs.train.recipes import load_recipe, trainer_config
    from tinyrs.train.schedules import schedule_curves

    recipe = load_recipe("S", "paper")
    rows = schedule_curves(trainer_config("sft", tmp_path, recipe["trainer"]), recipe["vision_lr"], 100)
    lm, vision, released = ([r[k] for r in rows] for k in rows[0] if k != "step")
    assert (lm[3], vision[3]) == pytest.approx((1e-5, 2e-6)) and lm[1] == pytest.approx(1e-5 / 3)  # 3% warm-up: 3
    assert lm[-1] < 1e-7 and vision[-1] < 2e-8  # cosine to zero
    assert released[:2] == [0, 0] and released[2] == pytest.approx(1e-5 * math.log(2) / math.log(3))
    assert released[3:] == pytest.approx([1e-5] * 97)


def test_resume_continues_an_interrupted_run(train_env, tmp_path):
    cmd = [sys.executable, "-m", "tinyrs.train", "S", "--runs-root", str(train_env["runs"]), "--no-progress"]
    opts = ["--set", f"data_dir={train_env['data']}", "--set", "max_steps=12", "--set", "save_steps=3",
            "--set", "per_device_train_batch_size=2", "--set", "logging_steps=1"]
    proc = subprocess.Popen(cmd + ["--init", str(train_env["base"]), "--force", *opts], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    run = None
    while time.time() < deadline:
        run = next(iter(unfinished_runs("S", train_env["runs"])), None)
        if run is not None and any((run / "trainer").glob("checkpoint-6")):
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run is not None and not (run / "complete.json").exists()
    other = subprocess.run(cmd + ["--init", str(train_env["base"]), "--resume", *opts, "--set", "learning_rate=0.01"],
                           capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and "started with other settings (trainer.learning_rate: " in other.stderr, other.stderr
    r = subprocess.run(cmd + ["--init", str(train_env["base"]), "--resume", *opts], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming {run} from checkpoint-" in r.stdout, r.stdout  # says where it went on from
    assert (run / "complete.json").exists() and json.loads((run / "complete.json").read_text())["steps"] == 12
    steps = [m["step"] for m in load_metrics(run) if "loss" in m]
    assert steps == list(range(1, 13))  # one run folder holds the whole history, each step once
    # the resumed run went on from the weights it had saved: it ends where an uninterrupted run ends
    whole = tmp_path / "whole"
    r = subprocess.run([*cmd[:4], "--runs-root", str(whole), "--no-progress", "--init", str(train_env["base"]), *opts],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    from tinyrs.model import load_model

    a, b = (load_model(d / "checkpoint").state_dict() for d in (run, latest_run("S", whole)))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert len(json.loads((run / "run.json").read_text())["resumed"]) == 1  # the first record kept, the resume noted


def test_paper_dry_run_without_a_gpu(train_env, capsys):
    from tinyrs.cli import main

    assert main(["train", "S", "--config", "paper", "--dry-run", "--set", f"data_dir={train_env['data']}"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert 2.1e9 < report["parameters"]["total"] < 2.3e9  # Qwen2-VL-2B: 2.2 B parameters
    assert report["global_batch"] == 128 and report["steps_per_epoch"] >= 1
    assert report["memory_per_gpu"]["total_gib"] > 0 and "accelerate launch" in report["launch"]
    assert "zero3.yaml" in report["launch"] and "--num_processes 4" in report["launch"]
    # the logits of 16 sequences of 1,280 image + 256 text tokens over Qwen2's 151,936-token vocabulary (bf16 and
    # the loss's fp32 copy) are the largest single term, as large as everything else
    assert abs(report["memory_per_gpu"]["logits_gib"] - 16 * 1536 * 151936 * 6 / 2**30) < 0.1
    assert main(["train", "R", "--config", "paper", "--dry-run", "--set", f"data_dir={train_env['data']}",
                 "--init", "S", "--arm", "PSR"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["kind"] == "grpo" and r["memory_per_gpu"]["reference_model_gib"] > 0 and "--num_machines 4" in r["launch"]
    assert r["launch"].endswith("--arm PSR")  # an arm's run trained from this line is named as that arm
    # TRL builds the reference model in the policy's dtype: bf16 inside DeepSpeed (ZeRO-3, sharded over 16 GPUs),
    # the fp32 we load under DDP
    params = r["parameters"]["total"]
    assert abs(r["memory_per_gpu"]["reference_model_gib"] - 2 * params / r["gpus"] / 2**30) < 0.1
    assert main(["train", "R", "--config", "paper", "--dry-run", "--set", f"data_dir={train_env['data']}",
                 "--set", "strategy=ddp"]) == 0
    ddp = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(ddp["memory_per_gpu"]["reference_model_gib"] - 4 * params / 2**30) < 0.1
    assert main(["train", "R", "--config", "paper", "--dry-run", "--set", f"data_dir={train_env['data']}",
                 "--set", "strategy=fsdp"]) == 0  # fp32 too, sharded
    fsdp = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(fsdp["memory_per_gpu"]["reference_model_gib"] - 4 * params / fsdp["gpus"] / 2**30) < 0.1
    assert main(["train", "R", "--config", "paper", "--dry-run", "--set", f"data_dir={train_env['data']}",
                 "--set", "num_generations=8", "--set", "judge=judge_released", "--set", "judge_failure=released"]) == 0
    # (4 per device x 16 GPUs: whole groups, though not on one; the released judge's request and failure handling)
    capsys.readouterr()
    assert main(["train", "R", "--config", "paper", "--dry-run", "--arm", "NOPE"]) == 2
    assert "--arm NOPE: not an arm of the plan" in capsys.readouterr().err
    # the 7B chain of Table V, from its published dimensions
    assert main(["train", "P", "--config", "paper", "--dry-run", "--init", "Qwen/Qwen2-VL-7B-Instruct",
                 "--set", f"data_dir={train_env['data']}", "--set", "strategy=ddp"]) == 0
    r7 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 8.2e9 < r7["parameters"]["total"] < 8.4e9 and r7["memory_per_gpu"]["model_states_gib"] > 120
    # the printed launch trains what was checked: the same start and overrides
    assert r7["launch"].endswith(f"-m tinyrs.train P --config paper --init Qwen/Qwen2-VL-7B-Instruct "
                                 f"--set data_dir={train_env['data']} --set strategy=ddp")
    # a mistyped trainer field fails here, not after the cluster job starts
    assert main(["train", "S", "--config", "paper", "--dry-run", "--set", f"data_dir={train_env['data']}",
                 "--set", "learnig_rate=1e-5"]) == 2
    assert "unknown SFTConfig field(s) ['learnig_rate']" in capsys.readouterr().err


def test_nothing_to_train_on_or_no_weights_to_start_from_is_one_line_and_leaves_no_run(train_env, tmp_path, capsys):
    from tinyrs.cli import main

    runs = tmp_path / "runs"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "rl.json").write_text("[]")
    for extra in ([], ["--dry-run"]):
        assert main(["train", "R", "--init", str(train_env["base"]), "--runs-root", str(runs), "--set",
                     f"data_dir={tmp_path / 'empty'}", *extra]) == 2
        assert "rl.json: no entries: nothing to train on" in capsys.readouterr().err
    for extra in ([], ["--dry-run"]):  # a missing file says what makes it, for the recipe's profile
        assert main(["train", "S", "--config", "paper", "--runs-root", str(runs), "--set",
                     f"data_dir={tmp_path / 'empty'}", *extra]) == 2
        err = capsys.readouterr().err
        assert "instruct_balanced.json is missing: `tinyrs data build --profile paper` makes it" in err, err
    assert main(["train", "P", "--config", "paper", "--runs-root", str(runs), "--set", f"data_dir={tmp_path / 'empty'}",
                 "--dry-run"]) == 2  # a paper build writes pretrain.json only from VHM's pre-training captions
    assert "`tinyrs data build --profile paper --pretrain-json VHM_PRETRAIN.json` makes it" in capsys.readouterr().err
    bad = tmp_path / "bad_meta"  # a mistyped answer type would pick the closed reward for the sample
    bad.mkdir()
    for name in ("rl.json", "build.json", "scenes.jsonl"):
        shutil.copy(train_env["data"] / name, bad / name)
    (bad / "images").symlink_to(train_env["data"] / "images")
    (bad / "qa_meta.jsonl").write_text((train_env["data"] / "qa_meta.jsonl").read_text()
                                       + json.dumps({"id": "x", "answer_type": "closd"}) + "\n")
    assert main(["train", "R", "--init", str(train_env["base"]), "--runs-root", str(runs), "--set", f"data_dir={bad}"]) == 2
    assert "answer_type 'closd' is not one of closed, grounding, open" in capsys.readouterr().err
    (tmp_path / "config_only").mkdir()  # a checkpoint folder whose weights were never copied
    shutil.copy(train_env["base"] / "checkpoint" / "config.json", tmp_path / "config_only")
    assert main(["train", "S", "--init", str(tmp_path / "config_only"), "--runs-root", str(runs), "--no-progress",
                 "--set", f"data_dir={train_env['data']}", "--set", "max_steps=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot load Qwen2-VL checkpoint '{tmp_path / 'config_only'}' as a local folder")
    assert "Traceback" not in err and not runs.exists()  # no run folder left behind


def test_paper_dry_run_counts_a_training_row_per_answer(train_env, tmp_path, capsys):
    """The SFT dataset has a row per answer of a multi-turn conversation: the dry run's steps count those rows."""
    from tinyrs.cli import main

    entries = json.loads((train_env["data"] / "instruct_balanced.json").read_text())[:300]
    turns = entries[0]["conversations"]
    entries[0]["conversations"] = turns + [{"from": "human", "value": "And again?"}, dict(turns[-1])]
    (tmp_path / "instruct_balanced.json").write_text(json.dumps(entries))
    assert main(["train", "S", "--config", "paper", "--dry-run", "--set", f"data_dir={tmp_path}"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["entries"] == 300 and report["rows_per_epoch"] == 301
    assert report["steps_per_epoch"] == 3  # 301 rows at a global batch of 128


@pytest.mark.slow
def test_two_process_ddp_on_cpu(train_env):
    """A real 2-process DDP job (torchrun, gloo): both ranks finish and one checkpoint is saved."""
    runs = train_env["runs"] / "ddp"
    for name, extra in (("S", []), ("R", ["--set", "max_completion_length=16", "--set", "per_device_train_batch_size=2"])):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "tinyrs.train", name, "--init", str(train_env["base"]), "--runs-root", str(runs), "--no-progress",
               "--set", f"data_dir={train_env['data']}", "--set", "max_steps=2", "--set", "per_device_train_batch_size=2",
               "--set", "logging_steps=1", *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert r.returncode == 0, r.stderr[-3000:]
        done = [d for d in (runs / name).glob("*-*") if (d / "complete.json").exists()]
        assert len(done) == 1 and (done[0] / "checkpoint" / "model.safetensors").exists()
        assert len(list((runs / name).glob("*-*"))) == 1  # the two ranks shared one run folder
        assert json.loads((done[0] / "complete.json").read_text())["steps"] == 2
        assert json.loads((done[0] / "run.json").read_text())["launch"] == {"world_size": 2}
    # one process trains another run (half the global batch): the 2-process one is not reused for it
    single = run_stage("S", init=str(train_env["base"]), runs_root=runs, progress=False,
                       overrides=[f"data_dir={train_env['data']}", "max_steps=2", "per_device_train_batch_size=2",
                                  "logging_steps=1"])
    assert json.loads((single / "run.json").read_text())["launch"] is None
    assert len([d for d in (runs / "S").glob("*-*") if (d / "complete.json").exists()]) == 2


def test_resume_skips_a_checkpoint_whose_save_was_interrupted(tmp_path):
    from tinyrs.train.stage import last_complete_checkpoint

    for step, complete in ((3, True), (6, True), (9, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            (d / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-6")
    assert not (tmp_path / "checkpoint-9").exists()
    assert last_complete_checkpoint(tmp_path / "none") is None


def test_a_resumed_run_logs_each_step_once(tmp_path):
    """What was logged after the checkpoint a run resumes from is logged again by the resumed run: it is
    dropped first, with a line a kill tore; a fresh start in the same folder (no checkpoint) keeps nothing."""
    from types import SimpleNamespace

    from tinyrs.train.callbacks import JsonlMetrics

    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(10, 80, 10))
                    + '{"step": 80, "lo')
    assert [m["step"] for m in load_metrics(tmp_path)] == list(range(10, 80, 10))  # the torn line is not a record
    metrics = JsonlMetrics(path)
    metrics.on_train_begin(None, SimpleNamespace(is_world_process_zero=True, global_step=50), None)
    metrics.on_log(None, SimpleNamespace(is_world_process_zero=True, global_step=60, epoch=0.5), None, logs={"loss": 0.1})
    assert [m["step"] for m in load_metrics(tmp_path)] == [10, 20, 30, 40, 50, 60]
    metrics.on_train_begin(None, SimpleNamespace(is_world_process_zero=True, global_step=0), None)
    assert load_metrics(tmp_path) == []
    path.write_text('{"step": 10}\nnot json\n{"step": 20}\n')
    with pytest.raises(DataError, match="metrics.jsonl: line 2: not JSON"):
        load_metrics(tmp_path)


def test_resume_takes_the_unfinished_run_of_its_own_arm(tmp_path):
    """Arms of one stage train at once on a cluster (slurm/ablations.sh): resuming one must not pick another's."""
    for name, record, done in (("20261130-100000-aaaa", {"arm": "PSR"}, False), ("20261130-110000-bbbb", {}, False),
                               ("20261130-120000-cccc", {"arm": "PSR"}, True)):
        (tmp_path / "R" / name).mkdir(parents=True)
        (tmp_path / "R" / name / "run.json").write_text(json.dumps(record))
        if done:
            (tmp_path / "R" / name / "complete.json").write_text("{}")
    assert [r.name for r in unfinished_runs("R", tmp_path, "PSR")] == ["20261130-100000-aaaa"]
    assert [r.name for r in unfinished_runs("R", tmp_path)] == ["20261130-110000-bbbb"]  # not an arm (older run.json)
    assert unfinished_runs("R", tmp_path, "R") == [] and unfinished_runs("S", tmp_path) == []


def test_an_interrupted_run_is_continued_by_the_same_call(train_env, tmp_path, monkeypatch, capsys):
    """Started again as it was (an interrupted tinyrs reproduce, ablations or notebook), a run goes on from its
    last checkpoint instead of from step 0, and its wall time counts the session before the interruption."""
    from tinyrs.train import stage as stage_module
    from tinyrs.train.callbacks import RunClock

    class Interrupted(RunClock):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt  # Ctrl-C after the checkpoint of step 2

    def train():
        return run_stage("S", "toy", init=str(train_env["base"] / "checkpoint"), runs_root=tmp_path, progress=False,
                         overrides=[f"data_dir={train_env['data']}", *TINY, "max_steps=5", "save_steps=2"])

    monkeypatch.setattr(stage_module, "RunClock", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        train()
    monkeypatch.undo()
    [run] = unfinished_runs("S", tmp_path)
    before = json.loads((run / "trainer" / "checkpoint-2" / "elapsed.json").read_text())["seconds"]
    assert train() == run
    out = capsys.readouterr().out
    assert f"continuing the unfinished run {run}" in out and f"resuming {run} from checkpoint-2 (step 2)" in out
    done = json.loads((run / "complete.json").read_text())
    assert done["steps"] == 5 and done["seconds"] > before > 0
    assert [m["step"] for m in load_metrics(run) if "loss" in m] == [1, 2, 3, 4, 5]
    assert len(json.loads((run / "run.json").read_text())["resumed"]) == 1 and not (run / ".lock").exists()
    again = run_stage("S", "toy", init=str(train_env["base"] / "checkpoint"), runs_root=tmp_path, progress=False,
                      overrides=[f"data_dir={train_env['data']}", *TINY, "max_steps=5", "save_steps=2"], reuse=False)
    assert again != run  # --force: a new run


def test_a_run_in_training_is_not_taken_by_another_process(tmp_path):
    """Two processes asked for the same run (two terminals, two array tasks): the second starts its own instead
    of resuming the one being trained, and --resume says it is taken."""
    run = new_run_dir("S", tmp_path)  # claimed by this process until release
    (run / "run.json").write_text(json.dumps({"cache_key": "k"}))
    assert unfinished_runs("S", tmp_path, key="k") == [run] and unfinished_runs("S", tmp_path, key="j") == []
    other = ("import sys; from tinyrs.train.stage import _shared_run_dir; from tinyrs.config import ConfigError\n"
             "print(_shared_run_dir('S', sys.argv[1], False, key='k'))\n"
             "try: _shared_run_dir('S', sys.argv[1], True)\nexcept ConfigError as e: print(e)")
    r = subprocess.run([sys.executable, "-c", other, str(tmp_path)], capture_output=True, text=True, timeout=120)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and str(run) not in lines[0] and "(PosixPath(" in lines[0] and ", False)" in lines[0], r
    assert lines[1] == f"--resume: {run} is being trained by another process now"
    release(run)
    r = subprocess.run([sys.executable, "-c", other, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert f"(PosixPath('{run}'), True)" in r.stdout.splitlines(), r  # let go (the process ended): continued


def test_init_names_a_folder_a_stage_or_a_hub_id(tmp_path):
    from tinyrs.train.runs import resolve_init

    assert resolve_init("Qwen/Qwen2-VL-2B-Instruct", tmp_path) == "Qwen/Qwen2-VL-2B-Instruct"
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(FileNotFoundError, match="ckpt: a folder without config.json, not a checkpoint"):
        resolve_init(str(tmp_path / "ckpt"), tmp_path)  # was handed to from_pretrained: a tokenizer traceback
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    assert resolve_init(str(tmp_path / "ckpt"), tmp_path) == str(tmp_path / "ckpt")
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint" / "config.json").write_text("{}")
    assert resolve_init(str(tmp_path / "run"), tmp_path) == str(tmp_path / "run" / "checkpoint")
    for missing in (str(tmp_path / "nothing"), "./nothing", "runs/S/nothing"):  # paths, not hub ids
        with pytest.raises(FileNotFoundError, match="no such checkpoint folder"):
            resolve_init(missing, tmp_path)
    with pytest.raises(FileNotFoundError, match="no finished run of stage S"):
        resolve_init("S", tmp_path)
    with pytest.raises(FileNotFoundError, match="--model mymodel: not a checkpoint folder, a stage"):
        resolve_init("mymodel", tmp_path, flag="--model")


def test_recipe_values_are_read_as_written_and_checked(tmp_path):
    from tinyrs.config import ConfigError
    from tinyrs.train.recipes import check_trainer_fields, load_recipe, trainer_config

    own = tmp_path / "my_S.yaml"  # a researcher's own recipe: `1e-4` is a number, not the string YAML 1.1 reads
    own.write_text("stage: S\nkind: sft\ninit: P\ntrain_file: instruct.json\nvision_lr: 1e-5\ntrainer:\n"
                   "  learning_rate: 1e-4\n")
    recipe = load_recipe("S", str(own), ["vision_lr=2e-6", "max_steps=30"])
    assert recipe["trainer"] == {"learning_rate": 1e-4, "max_steps": 30} and recipe["vision_lr"] == 2e-6
    assert trainer_config("sft", tmp_path / "out", recipe["trainer"]).learning_rate == 1e-4
    for fields, problem in (({"max_steps": "ten"}, "max_steps: 'ten' is not a whole number"),
                            ({"max_steps": 2.5}, "is not a whole number"),
                            ({"learning_rate": "fast"}, "learning_rate: 'fast' is not a number"),
                            ({"bf16": "yes"}, "bf16: 'yes' is not true/false")):
        with pytest.raises(ConfigError, match=problem):
            check_trainer_fields("sft", fields)
    check_trainer_fields("grpo", {"num_generations": None, "temperature": 1, "scale_rewards": "group"})
    with pytest.raises(ConfigError, match="divisible by num_generations"):  # TRL's own check, as bad input
        trainer_config("grpo", tmp_path / "out", {"num_generations": 3, "per_device_train_batch_size": 4})
    # recipe keys: a typo or a word where a choice or true/false goes is caught before any data, model or run
    for item, problem in (("freeze.vision_towr=true", "unknown key freeze.vision_towr; freeze takes vision_tower"),
                          ("freeze.vision_tower=maybe", "freeze.vision_tower takes true or false, not 'maybe'"),
                          ("reward_variant=binry", "reward_variant is one of continuous, binary, quantized"),
                          ("grounding_reward=relesed", "grounding_reward is one of intended, released"),
                          ("judge_failure=zero", "judge_failure is one of skip, released"),
                          ("rewards=format", "rewards takes a list of reward names"),
                          ("seed=abc", "seed takes a whole number >= 0"), ("lora.rank=8", "unknown key lora.rank"),
                          ("per_device_train_batch_size=0", "GRPOConfig field per_device_train_batch_size: 0 must be > 0"),
                          ("num_train_epochs=0", "GRPOConfig field num_train_epochs: 0 must be > 0"),  # would finish "done", untrained
                          ("max_steps=0", r"GRPOConfig field max_steps: 0 must be > 0 \(or -1: no limit\)")):
        with pytest.raises(ConfigError, match=f"recipe .*R.yaml with --set: {problem}"):
            load_recipe("R", "toy", [item])
    assert load_recipe("R", "toy", ["lora.r=8"])["lora"] == {"r": 8}  # an empty section starts with its first key
    assert load_recipe("R", "toy", ["freeze.vision_tower=true"])["freeze"]["vision_tower"] is True
    (tmp_path / "typo.yaml").write_text("stage: S\nkind: sft\ntrain_file: x.json\nreward_varient: binary\n")
    with pytest.raises(ConfigError, match="typo.yaml: unknown recipe key 'reward_varient'"):
        load_recipe("S", str(tmp_path / "typo.yaml"))


def test_a_failed_judgement_is_left_out_of_the_group_not_scored_0(train_env, tmp_path):
    """TRL leaves a completion out of its group's baseline (advantage 0) only when every reward function
    returns None for it; make_rewards has the format reward follow a failed judgement, so a judge outage
    is not an accuracy of 0 (a negative advantage)."""
    from trl import GRPOTrainer

    from tinyrs.data.build import image_root_of
    from tinyrs.data.hf import to_grpo_dataset
    from tinyrs.model import load_model, load_processor
    from tinyrs.prompts import THINK_INSTRUCTION
    from tinyrs.rewards import make_rewards
    from tinyrs.train.recipes import trainer_config

    class FirstCall:
        """The first judgement gives `first` (None: the call failed), every later one 0.8."""
        def __init__(self, first):
            self.first, self.calls = first, 0

        def score(self, question, answer, image):
            self.calls += 1
            return self.first if self.calls == 1 else 0.8

    data, checkpoint = train_env["data"], train_env["base"] / "checkpoint"
    entry = {**json.loads((data / "rl.json").read_text())[0], "id": "open-1",
             "conversations": [{"from": "human", "value": "<image>\n{IT} Describe the image in detail."},
                               {"from": "gpt", "value": "A scene."}]}
    dataset = to_grpo_dataset([entry], image_root_of(data), THINK_INSTRUCTION, None, {"open-1": {"answer_type": "open"}})
    advantages = {}
    for first in (None, 0.0):
        judge = FirstCall(first)
        args = trainer_config("grpo", tmp_path / "out", dict(per_device_train_batch_size=4, num_generations=4,
                              max_completion_length=8, max_steps=1, temperature=1.0, top_k=50, report_to=[]), seed=0)
        trainer = GRPOTrainer(model=load_model(checkpoint), args=args, processing_class=load_processor(checkpoint),
                              reward_funcs=make_rewards(["format", "accuracy"], judge=judge), train_dataset=dataset)
        torch.manual_seed(0)
        advantages[first] = trainer._generate_and_score_completions([dataset[0]] * 4)["advantages"].tolist()
        assert judge.calls == 4  # one judgement per completion, shared by both reward functions
    assert advantages[0.0][0] < -1  # graded 0 against three 0.8s: pushed down
    assert advantages[None][0] == 0.0  # failed: no signal, and not part of the others' baseline


def test_tinyrs_runs_says_what_each_run_is(tmp_path, capsys):
    """Finished, training now (another process holds it), interrupted with or without a checkpoint."""
    from tinyrs.cli import main
    from tinyrs.train.runs import runs_table

    def run(stage, name, complete=None, checkpoint=None):
        d = tmp_path / stage / name
        (d / "trainer").mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({"stage": stage, "started": "2026-11-30T10:00:00", "arm": None}))
        if complete:
            (d / "complete.json").write_text(json.dumps(complete))
        if checkpoint:
            (d / "trainer" / f"checkpoint-{checkpoint}").mkdir()
            (d / "trainer" / f"checkpoint-{checkpoint}" / "trainer_state.json").write_text("{}")
            (d / "trainer" / f"checkpoint-{checkpoint}" / "elapsed.json").write_text('{"seconds": 12.5}')
        return d

    run("S", "20261130-100000-aaaa", complete={"steps": 10, "seconds": 30.0})
    run("S", "20261130-110000-bbbb", checkpoint=4)
    run("S", "20261130-120000-cccc")
    held = run("R", "20261130-130000-dddd", checkpoint=2)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tinyrs.train.runs import claim; "
                               "print(claim(sys.argv[1]), flush=True); time.sleep(120)", str(held)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        rows = {r["run"]: r for r in runs_table(tmp_path)}
        assert rows["20261130-100000-aaaa"]["status"] == "finished" and rows["20261130-100000-aaaa"]["steps"] == 10
        assert rows["20261130-110000-bbbb"]["status"] == "interrupted, continues from step 4"
        assert rows["20261130-110000-bbbb"]["seconds"] == 12.5
        assert rows["20261130-120000-cccc"]["status"] == "interrupted before its first checkpoint"
        assert rows["20261130-130000-dddd"]["status"] == "training now"
        assert [r["stage"] for r in runs_table(tmp_path, ["R"])] == ["R"]
    finally:
        holder.kill()
        holder.wait()
    assert main(["runs", "R", "--runs-root", str(tmp_path)]) == 0
    assert "interrupted, continues from step 2" in capsys.readouterr().out  # the holder died: the claim went with it
    assert main(["runs", "Q", "--runs-root", str(tmp_path)]) == 2
