"""Writes notebooks/quickstart.ipynb (kept as code so the walkthrough is reviewed like code)."""

from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Quickstart: teach a small model to classify medical transcripts\n\n"
       "The seed's workflow, as in the BigQuery ML walkthrough: measure the base model, tune it, measure "
       "again, compare per label. Everything runs on this machine; the default model, "
       "`HuggingFaceTB/SmolLM2-135M-Instruct`, works offline.\n\n"
       "The data (`data/`, CC0, from mtsamples.com) maps a short description of a transcript to one of five "
       "specialties. Set `FULL = True` for the real task instead: full transcripts, 19 specialties, one label "
       "per distinct transcript (`data/specialty-*.jsonl`; `data/README.md` says how they were built). It "
       "tunes Gemma 3 270M with a short prompt and `max_seq_length=512`, the best setting measured within an "
       "hour on a 2-core CPU (README, \"The real task\")."),
    code("import json\nimport jupyter_tune as jt\n\n"
         "FULL = False\nBASE_MODEL = \"google/gemma-3-270m\" if FULL else \"HuggingFaceTB/SmolLM2-135M-Instruct\"\n"
         "TRAIN = \"data/specialty-train.jsonl\" if FULL else \"data/small-train.jsonl\"\n"
         "EVAL = \"data/specialty-eval.jsonl\" if FULL else \"data/small-eval.jsonl\"\n"
         "LABELS = [line.strip() for line in open(\"data/specialty-labels.txt\")] if FULL else [\n"
         "    \"Cardiovascular / Pulmonary\", \"Gastroenterology\", \"Neurology\", \"Orthopedic\", \"Urology\"]\n"
         "TEMPLATE = (\"Assign a label to the given medical transcript from among these labels: [\"\n"
         "            + \", \".join(LABELS) + \"]. TRANSCRIPT: {input_text}\")\n"
         "# The 19 labels' list takes about a fifth of 512 tokens: the tuned model learns the labels, so spend them "
         "on the text.\nTUNING = {}\nif FULL:\n"
         "    TEMPLATE = \"Medical specialty of this transcript. TRANSCRIPT: {input_text}\"\n"
         "    TUNING = {\"max_seq_length\": 512, \"epochs\": 2}"),
    md("## 1. Look at the data as the model will see it\n\n"
       "Token counts with the model's own tokenizer, what would be truncated, and an estimate of the time "
       "and memory of tuning, measured from a few real steps."),
    code("jt.preview_dataset(TRAIN, EVAL, base_model=BASE_MODEL, prompt_template=TEMPLATE)"),
    md("## 2. Measure the base model\n\n"
       "Like `ML.EVALUATE`: precision, recall and F1 per label. The default `mode=\"score\"` ranks the known "
       "labels by the model's likelihood, so every prediction is a valid label."),
    code("base = jt.load_model(BASE_MODEL)\n"
         "base_report = jt.evaluate(base, EVAL, prompt_template=TEMPLATE)\nbase_report"),
    md("## 3. Tune\n\n"
       "`jt.tune` returns at once: the job runs in its own process, so this notebook stays usable. "
       "`job.view()` shows the live curves (Supervise), the dataset statistics (Dataset), the settings "
       "(Details) and, once it has succeeded, a Test tab.\n\n"
       "The job picks its best checkpoint on a validation set. That set is held out from the training rows "
       "with `jt.split` (stratified; duplicates never straddle it), never the evaluation set: a checkpoint "
       "chosen on `EVAL` would make the final scores on `EVAL` look better than they are."),
    code("train_rows, val_rows = jt.split(TRAIN, test_size=0.1, seed=0)\n"
         "job = jt.tune(base_model=BASE_MODEL, train_dataset=train_rows, validation_dataset=val_rows,\n"
         "              tuned_model_display_name=\"medical-specialty\", prompt_template=TEMPLATE, **TUNING)\njob.view()"),
    code("job.wait()\nprint(job.state, job.error or \"\")\njob.metrics.tail()"),
    md("## 4. Measure the tuned model and compare\n\n"
       "Beside both models, a baseline: a TF-IDF + linear SVM classifier (scikit-learn) trained on the same "
       "training rows in seconds, and the majority class. Tuning pays when the tuned model beats it; the "
       "comparison's headline says when it does not."),
    code("tuned = jt.load_model(job)\n"
         "tuned_report = jt.evaluate(tuned, EVAL, prompt_template=TEMPLATE)\ntuned_report"),
    code("baseline = jt.baseline(train_rows, EVAL, prompt_template=TEMPLATE)  # the rows the model tuned on\nbaseline"),
    code("comparison = jt.compare(base_report, tuned_report, baseline=baseline)\ncomparison"),
    md("## 5. Try a few prompts"),
    code("prompts = [\n"
         "    {\"input_text\": \"Colonoscopy with polypectomy for rectal bleeding.\"},\n"
         "    {\"input_text\": \"MRI of the lumbar spine for chronic low back pain radiating to the leg.\"},\n"
         "    {\"input_text\": \"Cystoscopy and transurethral resection of a bladder tumor.\"},\n"
         "]\njt.generate_text(tuned, prompts, prompt_template=TEMPLATE, max_output_tokens=12)"),
    md("## 6. Batch generation over the evaluation set\n\nLike `ML.GENERATE_TEXT`: the rows come back with "
       "`ml_generate_text_llm_result` and `ml_generate_text_status`."),
    code("generated = jt.generate_text(tuned, EVAL, prompt_template=TEMPLATE, max_output_tokens=12)\n"
         "generated[[\"input_text\", \"output_text\", \"ml_generate_text_llm_result\", \"ml_generate_text_status\"]].head(10)"),
    code("def macro_f1(report):\n    return float(report.metrics.loc[\"macro avg\", \"f1_score\"])\n\n"
         "summary = {\"base_macro_f1\": macro_f1(base_report), \"tuned_macro_f1\": macro_f1(tuned_report),\n"
         "           \"baseline_macro_f1\": macro_f1(baseline), \"job_id\": job.id, \"state\": job.state.value}\n"
         "print(json.dumps(summary))"),
]
nb = nbf.v4.new_notebook(cells=cells)
for i, cell in enumerate(nb.cells):  # fixed ids: regenerating changes only what the cells say
    cell.id = f"cell-{i:02d}"
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
out = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
nbf.write(nb, out)
print(f"wrote {out}")
