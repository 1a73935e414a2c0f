package dev.dreamcluster.worker.data;

/**
 * The train.json defaults of the per-image options that folders and yaml files may override.
 *
 * @param flipP horizontal-flip probability (flip_p.txt / yaml flip_p override it)
 * @param shuffleTags shuffle the tags after the main prompt (shuffle_tags.txt / yaml can only add it)
 * @param keepTags the first keepTags tags keep their place when shuffling
 */
public record DataOptions(double flipP, boolean shuffleTags, int keepTags) {
    public static final DataOptions NONE = new DataOptions(0, false, 0);
}
