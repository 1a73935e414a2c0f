/**
 * Messages that more than one kind of node sees, one file per protocol, all marked {@link
 * dev.dreamcluster.protocol.CborSerializable} (bound to jackson-cbor in {@code reference.conf}; Java
 * serialization stays off). Messages carry control, never tensors.
 */
package dev.dreamcluster.protocol;
