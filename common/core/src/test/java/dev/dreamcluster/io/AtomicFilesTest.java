package dev.dreamcluster.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {
    @Test
    void shouldReplaceFilesAndFoldersWholeAndLeaveNoTemporaryName(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("a.json");
        AtomicFiles.writeString(f, "one");
        AtomicFiles.writeString(f, "two");
        assertEquals("two", Files.readString(f));
        Path work = Files.createDirectories(tmp.resolve(".ck.tmp").resolve("sub"));
        Files.writeString(work.resolve("x"), "new");
        Path target = Files.createDirectories(tmp.resolve("ck"));
        Files.writeString(target.resolve("old"), "old");
        AtomicFiles.replaceFolder(tmp.resolve(".ck.tmp"), target);
        assertEquals("new", Files.readString(target.resolve("sub").resolve("x")));
        assertFalse(Files.exists(target.resolve("old")));
        assertEquals(List.of(tmp.resolve("a.json"), tmp.resolve("ck")), list(tmp));
    }

    @Test
    void shouldRecogniseExactlyTheTemporaryNames(@TempDir Path tmp) throws Exception {
        for (String n : List.of(".step-000001.tmp", "final.tmp-4242", "model.safetensors.tmp", ".step-000002.del.tmp", "step-000003",
                "final", "notes.tmp.txt", "final.tmp-x")) {
            Files.createDirectories(tmp.resolve(n));
        }
        assertEquals(4, AtomicFiles.deleteStaleTemps(tmp).size());
        assertEquals(List.of("final", "final.tmp-x", "notes.tmp.txt", "step-000003"),
                list(tmp).stream().map(p -> p.getFileName().toString()).toList());
    }

    static List<Path> list(Path dir) throws Exception {
        try (var s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }
}
