package dev.dreamcluster.protocol;

/**
 * The one serialization marker: every cluster message implements it, and {@code reference.conf}
 * binds it to Akka's jackson-cbor serializer. Akka 2.6.21 ships no marker of its own.
 */
public interface CborSerializable {}
