"""Models: resolving names offline, loading bases and tuned adapters, hardware and architecture facts."""

import warnings

# transformers 5 deprecates a property that peft and Trainer still read whenever they load, merge or train an
# adapter; the notice is not for our users. Set here because every such path imports this package first.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
