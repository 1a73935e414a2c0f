package dev.dreamcluster.freeze;

/** The three models of a Stable Diffusion pipeline, named as their diffusers sub-folders. */
public enum Component {
    UNET("unet"),
    TEXT_ENCODER("text_encoder"),
    VAE("vae");

    private final String folder;

    Component(String folder) {
        this.folder = folder;
    }

    /** The diffusers sub-folder (and the prefix used in plans and logs). */
    public String folder() {
        return folder;
    }
}
