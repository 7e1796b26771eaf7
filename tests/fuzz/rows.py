"""The rows of the fuzzer's tiny datasets: two labels, as tests/support/tiny_model.py's TWO_LABEL_ROWS."""

TRAIN_ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t}
              for i in range(12) for t in ("Urology", "Neurology")]
EVAL_ROWS = [{"input_text": f"Held-out case {i} about {t}.", "output_text": t}
             for i in range(3) for t in ("Urology", "Neurology")]
