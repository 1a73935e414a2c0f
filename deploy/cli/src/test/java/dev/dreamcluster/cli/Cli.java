package dev.dreamcluster.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the command line in-process and captures what it prints. */
record Cli(int status, String out, String err) {
    static Cli run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int status = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Cli(status, out.toString(), err.toString());
    }

    /** Exit 2, nothing on stdout, exactly one stderr line starting "error:". */
    void assertUsageError(String... fragments) {
        org.junit.jupiter.api.Assertions.assertEquals(2, status, () -> "status; stderr: " + err);
        org.junit.jupiter.api.Assertions.assertEquals("", out);
        String[] lines = err.strip().split("\n");
        org.junit.jupiter.api.Assertions.assertEquals(1, lines.length, () -> "one line expected: " + err);
        org.junit.jupiter.api.Assertions.assertTrue(lines[0].startsWith("error: "), err);
        for (String f : fragments) {
            org.junit.jupiter.api.Assertions.assertTrue(err.contains(f), () -> "'" + f + "' missing from: " + err);
        }
    }
}
