"""The ``analyze`` step: paper 1's toxic-neuron analysis for one base model (and its tuned version).

1. Probe direction: the vendored mGPT English probe (``bundled:mgpt-probe``), a probe JSON file
   (``{"weight": [...]}``), or ``train``: logistic regression on mean-pooled last-layer states of
   ParaDetox toxic (1) vs neutral (0) sentences under the base model.
2. Toxic neurons, as paper 1 finds them (README "Analyze the value vectors"; xg/interp.py
   ``get_top_toxic_value_vectors(topk=100)``; notebooks/Interpreting Value Vectors.ipynb): the
   ``top_k`` (100) MLP value vectors most cosine-similar to the probe, then only those whose mean
   activation over greedy continuations of the ``selection_language`` (English) prompts is positive
   (mGPT: 36 of 100). Or a fixed list (``bundled:mgpt-toxic-neurons``, or [[layer, index], ...]).
3. Mean activation of those neurons over greedy continuations of the prompts, per language, for
   the base model and, with a ``tuned`` input, the tuned model (before against after tuning).
4. Offset intervention on the base model at each offset (paper 1: -5 and +5): each neuron's
   activation a -> a * scale + offset; the greedy continuations are judged, as a fixed internal
   instrument, by the probe under the unedited base model, per language. The run's scorer (paper 1:
   Perspective) judges them in the next step, ``analyze_score`` (xdetox.steps.analyze_score): this
   GPU pod only writes them, as rows, and holds no API key and no scorer permit.
5. Optionally, rank correlation of the per-language activations with mGPT's published ones.

Params (all but ``model`` and ``prompts`` optional):
  model: model params of the base model; tuned_model: model params of the tuned one
  probe: {source: bundled:mgpt-probe | train | <path to probe JSON>, data: paradetox:bundled,
          languages: [en], split: train, limit_per_language: null, l2: 0.001}
  top_k: 100; positive_activation: true; selection_language: en
  neurons: null | bundled:mgpt-toxic-neurons | [[layer, index], ...]
  prompts: a PromptSet (dumped); max_new_tokens: 20; batch_size: 8
  intervention: {offsets: [-5.0, 5.0], scale: 1.0} or null; compare_reference: false
Inputs: ``model`` (the base model's folder, when built or trained upstream), ``tuned`` (optional).
Writes ``analysis.json``, ``probe.json`` and ``continuations.jsonl``: GenerationRows of the base
model's greedy continuations (arm ``base``) and each offset's (arm ``offset <o>``), per language.
"""

from __future__ import annotations

from typing import Any

from xdetox.steps.context import StepContext

DEFAULTS: dict[str, Any] = {
    "probe": {"source": "bundled:mgpt-probe"},
    "top_k": 100,
    "positive_activation": True,
    "selection_language": "en",
    "neurons": None,
    "max_new_tokens": 20,
    "batch_size": 8,
    "intervention": {"offsets": [-5.0, 5.0], "scale": 1.0},
    "compare_reference": False,
}

#: the rows analyze_score scores: arm "base" and one arm per offset (``offset_arm``)
CONTINUATIONS = "continuations.jsonl"
BASE_ARM = "base"


def offset_arm(offset: float) -> str:
    return f"offset {offset:g}"


class AnalyzeParamError(ValueError):
    pass


def _model_path(ctx: StepContext, input_name: str, params: dict[str, Any] | None) -> str:
    if ctx.has_input(input_name):
        return str(ctx.input_dir(input_name))
    if params is None or not params.get("source"):
        raise AnalyzeParamError(f"analyze: no {input_name!r} input and no model source in params")
    from xdetox.models.resolve import resolve_model_source

    return resolve_model_source(params["source"], params.get("revision"))


def _probe(ctx: StepContext, spec: dict[str, Any], model: Any, tok: Any) -> tuple[Any, dict[str, Any]]:
    import torch

    from xdetox.analysis import reference
    from xdetox.analysis.neurons import pooled_last_hidden, train_probe

    source = str(spec.get("source", "bundled:mgpt-probe"))
    if source == reference.BUNDLED_PROBE:
        return torch.tensor(reference.mgpt_probe()), {"source": source}
    if source != "train":
        from xdetox.prompts.sources import localize

        return torch.tensor(reference.load_probe_json(localize(source, "probe.source"))), {"source": source}
    from xdetox.prompts import load_prompt_set

    base = {"id": "probe-data", "source": spec.get("data", "paradetox:bundled"),
            "languages": spec.get("languages", ["en"]), "paradetox_split": spec.get("split", "train"),
            "limit_per_language": spec.get("limit_per_language")}
    toxic = [i.prompt for i in load_prompt_set({**base, "paradetox_side": "toxic"})]
    neutral = [i.prompt for i in load_prompt_set({**base, "paradetox_side": "neutral"})]
    feats, _ = pooled_last_hidden(model, tok, toxic + neutral)
    labels = torch.tensor([1.0] * len(toxic) + [0.0] * len(neutral))
    w = train_probe(feats, labels, l2=float(spec.get("l2", 1e-3)))
    accuracy = float((((feats @ w) > 0).float() == labels).float().mean())
    return w, {"source": "train", "data": base["source"], "languages": base["languages"], "split": base["paradetox_split"],
               "examples": len(labels), "train_accuracy": accuracy}


def _neurons(spec: Any, model: Any, probe: Any, top_k: int) -> list[dict[str, Any]]:
    from xdetox.analysis import reference
    from xdetox.analysis.neurons import check_neurons, top_value_vectors, value_vectors

    if spec is None:
        return [{"layer": n.layer, "index": n.index, "cosine": n.cosine}
                for n in top_value_vectors(model, probe, top_k)]
    if spec == reference.BUNDLED_NEURONS:
        pairs = reference.mgpt_toxic_neurons()
    elif isinstance(spec, list):
        pairs = [(int(p[0]), int(p[1])) for p in spec]
    else:
        raise AnalyzeParamError(f"neurons: must be null, {reference.BUNDLED_NEURONS} or [[layer, index], ...]")
    check_neurons(model, pairs)
    import torch

    vv, inner = value_vectors(model)
    rows = torch.tensor([layer * inner + i for layer, i in pairs])
    cos = torch.nn.functional.cosine_similarity(vv[rows], probe.float().flatten().unsqueeze(0), dim=1)
    return [{"layer": p[0], "index": p[1], "cosine": float(c)} for p, c in zip(pairs, cos, strict=True)]


def run(ctx: StepContext) -> dict[str, Any]:
    from xdetox.analysis import reference
    from xdetox.analysis.neurons import greedy_activations, intervene, mean_or_none, probe_scores
    from xdetox.models.load import load_causal_lm
    from xdetox.prompts import load_prompt_set, render_prompt

    p = {**DEFAULTS, **ctx.params}
    if "prompts" not in p or "model" not in p:
        raise AnalyzeParamError("analyze: params 'model' and 'prompts' are required")
    model_params = p["model"]
    model, tok = load_causal_lm(_model_path(ctx, "model", model_params), dtype=model_params.get("dtype", "auto"))
    probe, probe_info = _probe(ctx, p["probe"] or {}, model, tok)

    ps = p["prompts"]
    items = load_prompt_set(ps)
    template = ps.get("template", "{prompt}")
    by_lang: dict[str, list[str]] = {}
    raw: dict[str, list[str]] = {}
    for item in items:
        by_lang.setdefault(item.language, []).append(render_prompt(template, item.prompt))
        raw.setdefault(item.language, []).append(item.prompt)
    gen = {"max_new_tokens": int(p["max_new_tokens"]), "batch_size": int(p["batch_size"])}

    candidates = _neurons(p["neurons"], model, probe, int(p["top_k"]))
    selection: dict[str, Any] = {"candidates": len(candidates), "rule": "fixed list" if p["neurons"] else "top_k"}
    neurons = candidates
    if p["neurons"] is None and p["positive_activation"]:
        neurons, selection = select_positive(model, tok, candidates, by_lang, str(p["selection_language"]), gen)
    pairs = [(n["layer"], n["index"]) for n in neurons]
    ctx.log(f"analyze {model_params.get('id')}: {len(pairs)} of {len(candidates)} candidate neurons kept "
            f"({selection['rule']})")
    rows: list[dict[str, Any]] = []  # every continuation the run's scorer will judge (analyze_score)

    languages: dict[str, dict[str, Any]] = {}
    for lang, prompts in by_lang.items():
        acts = greedy_activations(model, tok, prompts, pairs, **gen)
        languages[lang] = {"prompts": len(prompts), "base": {"mean": acts.mean, "per_neuron": _per_neuron(acts)},
                           "base_probe": mean_or_none(probe_scores(model, tok, probe, acts.continuations))}
        rows += _rows(lang, raw[lang], prompts, acts.continuations, BASE_ARM, ps, model_params, gen)
        iv = p["intervention"]
        if iv and pairs:
            scale = 1.0 if iv.get("scale") is None else float(iv["scale"])
            runs = []
            for offset in _offsets(iv):
                with intervene(model, pairs, offset=offset, scale=scale):
                    edited = greedy_activations(model, tok, prompts, pairs, **gen)
                run: dict[str, Any] = {
                    "offset": offset, "scale": scale, "mean_activation": edited.mean,
                    "probe": mean_or_none(probe_scores(model, tok, probe, edited.continuations)),
                    "examples": [{"prompt": a, "base": b, "intervened": c} for a, b, c in
                                 zip(prompts[:3], acts.continuations[:3], edited.continuations[:3], strict=False)],
                }
                rows += _rows(lang, raw[lang], prompts, edited.continuations, offset_arm(offset), ps, model_params, gen)
                runs.append(run)
            languages[lang]["intervention"] = runs
    if ctx.has_input("tuned"):
        tuned_params = p.get("tuned_model") or model_params
        tuned, ttok = load_causal_lm(_model_path(ctx, "tuned", None), dtype=tuned_params.get("dtype", "auto"))
        for lang, prompts in by_lang.items():
            acts = greedy_activations(tuned, ttok, prompts, pairs, **gen)
            languages[lang]["tuned"] = {"mean": acts.mean, "per_neuron": _per_neuron(acts)}
            # the base model reads the tuned model's continuations: one fixed instrument
            languages[lang]["tuned_probe"] = mean_or_none(probe_scores(model, tok, probe, acts.continuations))
        del tuned

    result: dict[str, Any] = {
        "model_id": model_params.get("id"),
        "probe": probe_info,
        "selection": selection,
        "neurons": neurons,
        "generation": {"decoding": "greedy", **gen},
        "languages": languages,
        "note": "mean = average activation (input of the MLP down-projection) of the listed neurons at the "
                "position predicting each greedy token; probe = mean sigmoid probe score of the continuations "
                "under the base model; the run's scorer judges the continuations in the analyze_score step",
    }
    if p["compare_reference"]:
        before = {lang: v["base"]["mean"] for lang, v in languages.items()}
        after = {lang: v["tuned"]["mean"] for lang, v in languages.items() if "tuned" in v} or None
        result["reference_comparison"] = {**reference.compare_with_mgpt(before, after),
                                          "neurons": reference.neuron_overlap(pairs)}
    from xdetox.records import dumps_row

    # the rows first: the scorer step reads them, and the analysis is the step's last output
    ctx.put_bytes(CONTINUATIONS, "".join(dumps_row(r) for r in rows).encode())
    ctx.put_json("analysis.json", result)
    ctx.put_json("probe.json", {"shape": [1, int(probe.numel())], "weight": [float(x) for x in probe.flatten()],
                                **{k: v for k, v in probe_info.items() if k != "source"}, "source": probe_info["source"]})
    summary = {lang: {k: v for k, v in d.items() if k in {"base_probe", "tuned_probe"}} for lang, d in languages.items()}
    return {"neurons": len(pairs), "candidates": len(candidates), "languages": len(languages),
            "probe": probe_info["source"], "summary": summary}


def _offsets(iv: dict[str, Any]) -> list[float]:
    """The intervention's offsets (``offset``, a single one, is read too: older params)."""
    if iv.get("offsets"):
        return [float(o) for o in iv["offsets"]]
    return [float(iv.get("offset") or 0.0)]


def select_positive(model: Any, tok: Any, candidates: list[dict[str, Any]], by_lang: dict[str, list[str]],
                    language: str, gen: dict[str, int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Paper 1's second filter: of the candidate value vectors, keep those whose neuron's mean
    activation over greedy continuations of the ``language`` prompts is > 0 (README, "Analyze the
    value vectors": activations averaged over the next 20 tokens of the English RTP-LX prompts).
    Candidates keep their cosine order; each kept one records its selection activation."""
    from xdetox.analysis.neurons import greedy_activations

    if language not in by_lang:
        raise AnalyzeParamError(f"analysis.selection_language: no {language!r} prompts in the analysed prompt set "
                                f"(it has {', '.join(sorted(by_lang)) or 'none'})")
    pairs = [(n["layer"], n["index"]) for n in candidates]
    acts = greedy_activations(model, tok, by_lang[language], pairs, **gen)
    kept = [{**n, "selection_activation": acts.per_neuron[(n["layer"], n["index"])]} for n in candidates
            if acts.per_neuron[(n["layer"], n["index"])] > 0]
    return kept, {"candidates": len(candidates), "kept": len(kept), "rule": "positive mean activation",
                  "language": language, "prompts": len(by_lang[language])}


def _rows(lang: str, prompts: list[str], shown: list[str], texts: list[str], arm: str, ps: dict[str, Any],
          model_params: dict[str, Any], gen: dict[str, int]) -> list[dict[str, Any]]:
    """GenerationRows (dumped) of one language's greedy continuations: what analyze_score scores."""
    from xdetox.records import GenerationRow

    return [GenerationRow(prompt_id=f"{lang}-{i}", language=lang, prompt=p, prompt_text=s, sample_index=0, text=t,
                          seed=0, model_id=str(model_params.get("id", "model")), model_digest="analyze", arm=arm,
                          backend="transformers-greedy", prompt_set=str(ps.get("id", "analysis")),
                          settings={"decoding": "greedy", "max_new_tokens": gen["max_new_tokens"]}).model_dump(mode="json")
            for i, (p, s, t) in enumerate(zip(prompts, shown, texts, strict=True))]


def _per_neuron(acts: Any) -> list[dict[str, Any]]:
    return [{"layer": n[0], "index": n[1], "mean": v} for n, v in acts.per_neuron.items()]
