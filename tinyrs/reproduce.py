"""`tinyrs reproduce`: execute the numbered notebooks in order with papermill.

Parameters come from tinyrs/configs/<profile>/notebooks.yaml (plus --param); every key must
be a parameter the notebook declares (papermill itself only warns about unknown ones), with a value of
the kind of its default (a word where the notebook's default is a number fails in a later cell otherwise).

After the data notebooks (01, 02) and before the first notebook that trains (03), every training run is
made at once: the main chain and the ablation arms (`tinyrs ablations`: independent runs in parallel,
each evaluated with the Table I protocol), then Table V is measured (`tinyrs bench table5`). The stage
notebooks 03-08 then find their runs and evaluations already made (same recipe, data and code: reused,
not trained again), and the table notebooks 09-14 read results/<profile>/."""
from __future__ import annotations

import time
from pathlib import Path

from .config import kind_of, load_yaml_file, same_kind
from .paths import CONFIGS, NOTEBOOKS, RESULTS
from .redact import looks_secret


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    books = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {o.strip().zfill(2) for o in only}
        missing = wanted - {b.name[:2] for b in books}
        if missing:
            raise SystemExit(f"no notebook numbered {sorted(missing)} in {NOTEBOOKS}")
        books = [b for b in books if b.name[:2] in wanted]
    return books


def parameter_defaults(notebook: Path) -> dict:
    """Each declared parameter's default value, or None where the default is not a literal."""
    import ast

    import papermill as pm

    defaults = {}
    for name, spec in pm.inspect_notebook(str(notebook)).items():
        try:
            defaults[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            defaults[name] = None
    return defaults


def notebook_parameters(profile: str, notebook: Path, extra: dict | None = None) -> dict:
    cfg_path = CONFIGS / profile / "notebooks.yaml"
    cfg = load_yaml_file(cfg_path) if cfg_path.exists() else {}
    params = {"profile": profile, **(cfg.get("all") or {}), **(cfg.get(notebook.stem) or {}), **(extra or {})}
    declared = parameter_defaults(notebook)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise SystemExit(f"{notebook.name} does not declare parameter(s) {unknown} (declared: {sorted(declared)}); "
                         f"check {cfg_path}")
    for name, value in params.items():
        if looks_secret(f"{name}={value}"):  # papermill writes parameters into the executed notebook
            raise SystemExit(f"{notebook.name}: parameter {name} holds what looks like a key or a password; "
                             "give keys through the environment ($OPENAI_API_KEY, $HF_TOKEN), not a parameter")
        if not same_kind(declared[name], value):
            raise SystemExit(f"{notebook.name}: parameter {name} takes {kind_of(declared[name])} "
                             f"(default {declared[name]!r}), not {value!r}")
    return params


FIRST_TRAINING_NOTEBOOK = "03"


def run_table_inputs(profile: str, results: Path | None = None) -> None:
    """What the table notebooks read: the ablation arms (arms.json) and Table V's measurements (table5.json)."""
    from .report.ablations import run_arms
    from .report.speed import measure_table5

    t0 = time.time()
    print("== ablation arms (tinyrs ablations)", flush=True)
    run_arms(profile, results_dir=results)
    print("== Table V measurements (tinyrs bench table5)", flush=True)
    measure_table5(profile, results_dir=results)
    print(f"   {time.time() - t0:.0f} s", flush=True)


def reproduce(profile: str = "toy", only: list[str] | None = None, out: str | Path | None = None,
              parameters: dict | None = None, progress: bool = True, ablations: bool = True) -> list[Path]:
    """Execute the notebooks (all, or `only` these numbers); `ablations` False skips making every run
    first (the stage notebooks then train what they need; the table notebooks read results/<profile>/)."""
    import papermill as pm

    out = Path(out) if out else RESULTS / profile / "notebooks"
    # every notebook's parameters checked before anything runs (a typo must not cost the runs of the tables first)
    checked = {nb: notebook_parameters(profile, nb, parameters) for nb in notebook_paths(only)}
    out.mkdir(parents=True, exist_ok=True)
    done = []
    t_start = time.time()
    for nb, params in checked.items():
        if ablations and nb.name[:2] >= FIRST_TRAINING_NOTEBOOK:
            run_table_inputs(profile)
            ablations = False
        t0 = time.time()
        print(f"== {nb.name} ({', '.join(f'{k}={v!r}' for k, v in params.items())})", flush=True)
        target = out / nb.name
        try:
            pm.execute_notebook(str(nb), str(target), parameters=params, cwd=str(NOTEBOOKS), kernel_name="python3",
                                progress_bar=progress, log_output=False)
        except pm.PapermillExecutionError as e:
            raise SystemExit(f"{nb.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                             f"(the executed copy with the traceback is {target})") from None
        done.append(target)
        print(f"   {time.time() - t0:.0f} s", flush=True)
    print(f"{len(done)} notebooks in {time.time() - t_start:.0f} s; executed copies in {out}", flush=True)
    return done
