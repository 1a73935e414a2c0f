package dev.dreamcluster.cli;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A cluster's key material: a per-cluster CA and node keystores it signs, all PKCS12, EC P-256,
 * SHA256withECDSA. Key generation and signing use the JDK's own providers; BouncyCastle's bcpkix only
 * builds the X.509 certificates (the JDK has no public certificate builder, and keytool through a
 * ProcessBuilder would put the store password on a command line every local user can read).
 *
 * <pre>
 * DIR/ca/ca.p12           the CA's private key and certificate: keep it off the nodes (offline)
 * DIR/ca/password         its store password
 * DIR/node/node.p12       a node key, its certificate signed by the CA, and the CA certificate (chain)
 * DIR/node/truststore.p12 the CA certificate only: a peer must present a certificate it signed
 * DIR/node/password       the password of both node stores
 * </pre>
 *
 * Every node mounts {@code DIR/node} (read-only, mode 0600) and starts with {@code --keys DIR/node}.
 * All files are written under a temporary name and renamed, and never overwritten.
 */
final class ClusterKeys {
    static final String CA_STORE = "ca.p12";
    static final String NODE_STORE = "node.p12";
    static final String TRUST_STORE = "truststore.p12";
    static final String PASSWORD = "password";
    private static final SecureRandom RANDOM = new SecureRandom();

    private ClusterKeys() {}

    /** A node's stores and their password, checked to open (so a bad folder is one clear error at start-up). */
    record NodeKeys(Path dir, Path keyStore, Path trustStore, String password) {}

    /** Makes a new CA in {@code out/ca} and a node keystore signed by it in {@code out/node}. */
    static void create(Path out, Duration nodeValidity) throws IOException, GeneralSecurityException {
        Path ca = out.resolve("ca");
        Path node = out.resolve("node");
        for (Path p : new Path[] {ca, node}) {
            if (Files.exists(p)) {
                throw new ConfigError("--out: " + Json.quote(p.toString()) + " already exists; keys are never overwritten"
                        + " (choose a new folder, or use --ca to sign another node keystore)");
            }
        }
        KeyPair caKeys = ecKeyPair();
        String id = Long.toHexString(RANDOM.nextLong() & Long.MAX_VALUE);
        X500Name caName = new X500Name("CN=dreamcluster CA " + id + ",O=DreamCluster");
        X509Certificate caCert = certificate(caName, caKeys.getPublic(), caName, caKeys, null, Duration.ofDays(3650), true);
        String caPassword = password();
        KeyStore caStore = KeyStore.getInstance("PKCS12");
        caStore.load(null, null);
        caStore.setKeyEntry("ca", caKeys.getPrivate(), caPassword.toCharArray(), new Certificate[] {caCert});
        writePrivateDir(ca);
        writeStore(ca.resolve(CA_STORE), caStore, caPassword);
        writeSecret(ca.resolve(PASSWORD), caPassword);
        issueNode(ca, node, nodeValidity);
    }

    /** Signs a new node keystore in {@code node} with the CA in {@code caDir} (rotation, or one key per node). */
    static void issueNode(Path caDir, Path node, Duration validity) throws IOException, GeneralSecurityException {
        if (Files.exists(node)) {
            throw new ConfigError("--out: " + Json.quote(node.toString()) + " already exists; keys are never overwritten");
        }
        String caPassword = readPassword(caDir.resolve(PASSWORD), "--ca");
        KeyStore caStore = openStore(caDir.resolve(CA_STORE), caPassword, "--ca");
        PrivateKey caKey;
        X509Certificate caCert;
        try {
            caKey = (PrivateKey) caStore.getKey("ca", caPassword.toCharArray());
            caCert = (X509Certificate) caStore.getCertificate("ca");
        } catch (GeneralSecurityException e) {
            throw new ConfigError("--ca: " + Json.quote(caDir.toString()) + " holds no usable CA key: " + e.getMessage());
        }
        if (caKey == null || caCert == null) {
            throw new ConfigError("--ca: " + Json.quote(caDir.toString()) + " holds no CA entry (expected a folder made by 'dreamcluster keys')");
        }
        KeyPair nodeKeys = ecKeyPair();
        X500Name nodeName = new X500Name("CN=dreamcluster node " + Long.toHexString(RANDOM.nextLong() & Long.MAX_VALUE) + ",O=DreamCluster");
        X509Certificate nodeCert = certificate(nodeName, nodeKeys.getPublic(), X500Name.getInstance(caCert.getSubjectX500Principal().getEncoded()),
                new KeyPair(caCert.getPublicKey(), caKey), caCert, validity, false);
        String password = password();
        KeyStore keyStore = KeyStore.getInstance("PKCS12");
        keyStore.load(null, null);
        keyStore.setKeyEntry("node", nodeKeys.getPrivate(), password.toCharArray(), new Certificate[] {nodeCert, caCert});
        KeyStore trustStore = KeyStore.getInstance("PKCS12");
        trustStore.load(null, null);
        trustStore.setCertificateEntry("ca", caCert);
        writePrivateDir(node);
        writeStore(node.resolve(NODE_STORE), keyStore, password);
        writeStore(node.resolve(TRUST_STORE), trustStore, password);
        writeSecret(node.resolve(PASSWORD), password);
    }

    /**
     * A CA and node keys for one embedded run, in a fresh 0700 temporary folder (the CA key is dropped
     * at once: nothing can ever sign another member of this cluster).
     */
    static NodeKeys throwaway() throws IOException, GeneralSecurityException {
        Path dir = Files.createTempDirectory("dreamcluster-keys-", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        create(dir, Duration.ofDays(2));
        dev.dreamcluster.io.AtomicFiles.deleteRecursively(dir.resolve("ca"));
        return load(dir.resolve("node"), "--keys");
    }

    /** Removes what {@link #throwaway} made. */
    static void deleteThrowaway(NodeKeys k) {
        try {
            dev.dreamcluster.io.AtomicFiles.deleteRecursively(k.dir().getParent());
        } catch (IOException e) {
            System.err.println("warning: cannot delete the run's throwaway keys in " + k.dir().getParent() + ": " + e.getMessage());
        }
    }

    /** Opens a node folder made by {@link #create}; any problem is one ConfigError naming {@code flag}. */
    static NodeKeys load(Path dir, String flag) {
        if (!Files.isDirectory(dir)) {
            throw new ConfigError(flag + ": " + Json.quote(dir.toString()) + " is not a folder (make one with 'dreamcluster keys --out DIR' and pass DIR/node)");
        }
        String password = readPassword(dir.resolve(PASSWORD), flag);
        KeyStore keyStore = openStore(dir.resolve(NODE_STORE), password, flag);
        KeyStore trustStore = openStore(dir.resolve(TRUST_STORE), password, flag);
        try {
            if (!keyStore.isKeyEntry("node") || trustStore.getCertificate("ca") == null) {
                throw new ConfigError(flag + ": " + Json.quote(dir.toString()) + " has no node key or no CA certificate");
            }
            X509Certificate cert = (X509Certificate) keyStore.getCertificate("node");
            cert.checkValidity();
            cert.verify(trustStore.getCertificate("ca").getPublicKey()); // the node key and the truststore belong together
        } catch (java.security.cert.CertificateExpiredException | java.security.cert.CertificateNotYetValidException e) {
            throw new ConfigError(flag + ": the node certificate in " + Json.quote(dir.toString()) + " is not valid now (" + e.getMessage()
                    + "); issue a new one with 'dreamcluster keys --ca CA_DIR --out DIR'");
        } catch (GeneralSecurityException e) {
            throw new ConfigError(flag + ": the node certificate in " + Json.quote(dir.toString()) + " is not signed by its truststore's CA");
        }
        return new NodeKeys(dir.toAbsolutePath(), dir.resolve(NODE_STORE).toAbsolutePath(), dir.resolve(TRUST_STORE).toAbsolutePath(),
                password);
    }

    /**
     * The bearer token of run {@code runId}'s control routes: HMAC-SHA256, keyed with the node's private
     * key (its PKCS#8 bytes), of a fixed label and the run id, base64url without padding (43 characters).
     * Whoever can read the node's key folder can derive it ({@code dreamcluster ctl --keys DIR}); the
     * HTTP port never gives it out; each run has its own, so a token seen in an old run's log opens no
     * later run.
     */
    static String controlToken(NodeKeys k, long runId) {
        try {
            KeyStore ks = openStore(k.keyStore(), k.password(), "--keys");
            PrivateKey key = (PrivateKey) ks.getKey("node", k.password().toCharArray());
            javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
            mac.init(new javax.crypto.spec.SecretKeySpec(key.getEncoded(), "HmacSHA256"));
            byte[] t = mac.doFinal(("dreamcluster run control v1|" + runId).getBytes(StandardCharsets.UTF_8));
            return Base64.getUrlEncoder().withoutPadding().encodeToString(t);
        } catch (GeneralSecurityException e) {
            throw new ConfigError("--keys: cannot derive the control token from " + k.keyStore() + " (" + e.getMessage() + ")");
        }
    }

    /**
     * Artery over TLS 1.3 with mutual authentication: every connection, in both directions, must show a
     * certificate the cluster CA signed. Host names are not checked: the certificates name the cluster
     * (its CA), not hosts, so nodes may move and be renamed freely.
     */
    static com.typesafe.config.Config akkaConfig(NodeKeys k) {
        String p = "akka.remote.artery.ssl.config-ssl-engine.";
        return com.typesafe.config.ConfigFactory.parseMap(java.util.Map.of(
                "akka.remote.artery.transport", "tls-tcp",
                p + "key-store", k.keyStore().toString(),
                p + "key-store-password", k.password(),
                p + "key-password", k.password(),
                p + "trust-store", k.trustStore().toString(),
                p + "trust-store-password", k.password(),
                p + "protocol", "TLSv1.3",
                p + "enabled-algorithms", java.util.List.of("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"),
                p + "require-mutual-authentication", "on",
                p + "hostname-verification", "off"));
    }

    private static String readPassword(Path file, String flag) {
        try {
            String p = Files.readString(file, StandardCharsets.UTF_8).strip();
            if (p.isEmpty()) {
                throw new ConfigError(flag + ": " + Json.quote(file.toString()) + " is empty (expected the store password)");
            }
            return p;
        } catch (IOException e) {
            throw new ConfigError(flag + ": cannot read " + Json.quote(file.toString()) + " (" + e.getClass().getSimpleName() + ")");
        }
    }

    private static KeyStore openStore(Path file, String password, String flag) {
        try (InputStream in = Files.newInputStream(file)) {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            ks.load(in, password.toCharArray());
            return ks;
        } catch (IOException | GeneralSecurityException e) {
            throw new ConfigError(flag + ": cannot open " + Json.quote(file.toString()) + " with its password file ("
                    + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()) + ")");
        }
    }

    private static KeyPair ecKeyPair() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
        return g.generateKeyPair();
    }

    private static X509Certificate certificate(X500Name subject, java.security.PublicKey key, X500Name issuer, KeyPair signer,
            X509Certificate issuerCert, Duration validity, boolean ca) throws GeneralSecurityException {
        try {
            Instant now = Instant.now();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuer, new BigInteger(127, RANDOM),
                    Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(validity)), subject, key);
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(ca));
            b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(key));
            if (ca) {
                b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            } else {
                b.addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(issuerCert));
                b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement));
                // every node is both TLS server (accepting) and client (connecting) on Artery
                b.addExtension(Extension.extendedKeyUsage, false,
                        new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
            }
            var signerOp = new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate());
            return new JcaX509CertificateConverter().getCertificate(b.build(signerOp));
        } catch (org.bouncycastle.operator.OperatorCreationException | org.bouncycastle.cert.CertIOException e) {
            throw new GeneralSecurityException("cannot build a certificate", e);
        }
    }

    private static String password() {
        byte[] b = new byte[24];
        RANDOM.nextBytes(b);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    private static void writePrivateDir(Path dir) throws IOException {
        Files.createDirectories(dir);
        try {
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system: the folder keeps its default permissions
        }
    }

    private static void writeStore(Path file, KeyStore ks, String password) throws IOException, GeneralSecurityException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (OutputStream out = Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            restrict(tmp);
            ks.store(out, password.toCharArray());
        }
        commit(tmp, file);
    }

    private static void writeSecret(Path file, String secret) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, "", StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        restrict(tmp); // before the secret is in it
        Files.writeString(tmp, secret + "\n", StandardCharsets.UTF_8, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
        commit(tmp, file);
    }

    private static void restrict(Path file) throws IOException {
        try {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system
        }
    }

    private static void commit(Path tmp, Path file) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(tmp, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
    }
}
