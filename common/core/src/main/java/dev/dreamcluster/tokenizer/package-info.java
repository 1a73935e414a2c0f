/**
 * CLIP's byte-level BPE tokenizer (OpenAI CLIP / Hugging Face CLIPTokenizer), read from a diffusers
 * {@code tokenizer/} folder: {@code vocab.json}, {@code merges.txt} and, when present,
 * {@code special_tokens_map.json}. Pure Java, no native library.
 */
package dev.dreamcluster.tokenizer;
