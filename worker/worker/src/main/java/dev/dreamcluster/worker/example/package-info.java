/**
 * The tiny example's pieces (examples/tiny): {@link dev.dreamcluster.worker.example.VaeTrainer}, which
 * trains the shapes autoencoder the example ships ({@code dreamcluster train-vae});
 * {@link dev.dreamcluster.worker.example.ExampleModel}, which writes the example's model (the
 * {@code tiny_shapes} preset: a random UNet and text encoder to train, that VAE) on first use; and
 * {@link dev.dreamcluster.worker.example.SampleCheck}, which measures whether a run's sample sheets show
 * their captions' colours and shapes ({@code dreamcluster check-samples}).
 */
package dev.dreamcluster.worker.example;
