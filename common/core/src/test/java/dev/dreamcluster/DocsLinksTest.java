package dev.dreamcluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every relative Markdown link in README.md and docs/ points at a file that exists, and every
 * {@code #anchor} into a Markdown file names one of its headings (GitHub's slugs). Links to http,
 * https and mailto are not followed; links inside code blocks and code spans are not links.
 */
class DocsLinksTest {
    /** {@code [text](target)} or {@code ![alt](target)}, with an optional "title". */
    private static final Pattern LINK = Pattern.compile("!?\\[((?:[^\\[\\]]|\\[[^\\]]*\\])*)\\]\\(\\s*<?([^)\\s>]+)>?(?:\\s+\"[^\"]*\")?\\s*\\)");
    private static final Pattern HEADING = Pattern.compile("^ {0,3}(#{1,6})\\s+(.*?)\\s*#*\\s*$");
    private static final Pattern FENCE = Pattern.compile("^ {0,3}(`{3,}|~{3,}).*$");

    /** The repository root: the nearest folder at or above user.dir that holds bin/dreamcluster. */
    static Path repositoryRoot() {
        Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath();
        for (Path q = p; q != null; q = q.getParent()) {
            if (Files.isRegularFile(q.resolve("bin").resolve("dreamcluster"))) {
                return q;
            }
        }
        throw new IllegalStateException("no folder holding bin/dreamcluster at or above " + p);
    }

    /** README.md and every docs/**.md, relative to the root, sorted. */
    static List<Path> documents(Path root) throws IOException {
        List<Path> docs = new ArrayList<>();
        docs.add(root.resolve("README.md"));
        Path dir = root.resolve("docs");
        if (Files.isDirectory(dir)) {
            try (Stream<Path> s = Files.walk(dir)) {
                s.filter(f -> Files.isRegularFile(f) && f.getFileName().toString().endsWith(".md")).sorted().forEach(docs::add);
            }
        }
        return docs;
    }

    @Test
    void everyRelativeLinkShouldReachAFileAndAnExistingHeading() throws IOException {
        Path root = repositoryRoot();
        List<Path> docs = documents(root);
        assertTrue(docs.size() > 1, "no docs/*.md found under " + root);
        Map<Path, Set<String>> anchors = new HashMap<>();
        List<String> broken = new ArrayList<>();
        int links = 0;
        for (Path doc : docs) {
            List<String> lines = Files.readAllLines(doc, StandardCharsets.UTF_8);
            boolean inFence = false;
            String fence = null;
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                Matcher f = FENCE.matcher(line);
                if (f.matches()) {
                    String mark = f.group(1);
                    if (!inFence) {
                        inFence = true;
                        fence = mark;
                        continue;
                    }
                    if (mark.charAt(0) == fence.charAt(0) && mark.length() >= fence.length() && line.trim().equals(mark)) {
                        inFence = false;
                        continue;
                    }
                }
                if (inFence) {
                    continue;
                }
                Matcher m = LINK.matcher(withoutCodeSpans(line));
                while (m.find()) {
                    String target = m.group(2);
                    String lower = target.toLowerCase(Locale.ROOT);
                    if (lower.startsWith("http://") || lower.startsWith("https://") || lower.startsWith("mailto:")) {
                        continue;
                    }
                    links++;
                    String problem = check(root, doc, target, anchors);
                    if (problem != null) {
                        broken.add(root.relativize(doc) + ":" + (i + 1) + ": [" + m.group(1) + "](" + target + "): " + problem);
                    }
                }
            }
        }
        assertTrue(links > 0, "no relative links found in " + docs);
        assertEquals(List.of(), broken, broken.size() + " broken links");
    }

    /** Why {@code target}, linked from {@code doc}, is broken, or null. */
    private static String check(Path root, Path doc, String target, Map<Path, Set<String>> anchors) {
        int hash = target.indexOf('#');
        String pathPart = hash < 0 ? target : target.substring(0, hash);
        String anchor = hash < 0 ? null : target.substring(hash + 1);
        Path file;
        if (pathPart.isEmpty()) {
            file = doc;
        } else {
            String decoded = URLDecoder.decode(pathPart.replace("+", "%2B"), StandardCharsets.UTF_8);
            file = (decoded.startsWith("/") ? root.resolve(decoded.substring(1)) : doc.getParent().resolve(decoded)).normalize();
            if (!file.startsWith(root)) {
                return "points outside the repository (" + file + ")";
            }
            if (!Files.exists(file)) {
                return "no such file " + root.relativize(file);
            }
        }
        if (anchor == null || anchor.isEmpty() || !file.getFileName().toString().endsWith(".md")) {
            return null;
        }
        Set<String> slugs = anchors.computeIfAbsent(file, DocsLinksTest::headingSlugs);
        String wanted = URLDecoder.decode(anchor, StandardCharsets.UTF_8).toLowerCase(Locale.ROOT);
        return slugs.contains(wanted) ? null : "no heading #" + anchor + " in " + root.relativize(file);
    }

    /** The anchors GitHub makes for every heading of a Markdown file (duplicates get -1, -2, ...). */
    static Set<String> headingSlugs(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Set<String> slugs = new HashSet<>();
        Map<String, Integer> seen = new HashMap<>();
        boolean inFence = false;
        for (String line : lines) {
            if (FENCE.matcher(line).matches()) {
                inFence = !inFence;
                continue;
            }
            if (inFence) {
                continue;
            }
            Matcher h = HEADING.matcher(line);
            if (!h.matches()) {
                continue;
            }
            String slug = slug(h.group(2));
            int n = seen.merge(slug, 1, Integer::sum) - 1;
            slugs.add(n == 0 ? slug : slug + "-" + n);
        }
        return slugs;
    }

    /**
     * GitHub's heading slug: the heading's text (link targets and emphasis marks removed), lowercased,
     * every character other than a letter, digit, space, '-' or '_' dropped, spaces turned into '-'.
     */
    static String slug(String heading) {
        String text = heading.replaceAll("!?\\[([^\\]]*)\\]\\([^)]*\\)", "$1").toLowerCase(Locale.ROOT);
        StringBuilder b = new StringBuilder();
        text.codePoints().forEach(c -> {
            if (Character.isLetterOrDigit(c) || c == '-' || c == '_') {
                b.appendCodePoint(c);
            } else if (c == ' ') {
                b.append('-');
            }
        });
        return b.toString();
    }

    /** The line with every `code span` blanked out, so that link-like text inside one is not a link. */
    static String withoutCodeSpans(String line) {
        StringBuilder b = new StringBuilder(line);
        int i = 0;
        while (i < b.length()) {
            if (b.charAt(i) != '`') {
                i++;
                continue;
            }
            int run = 0;
            while (i + run < b.length() && b.charAt(i + run) == '`') {
                run++;
            }
            String ticks = "`".repeat(run);
            int close = b.indexOf(ticks, i + run);
            while (close >= 0 && close + run < b.length() && b.charAt(close + run) == '`') {
                close = b.indexOf(ticks, close + run + 1);
            }
            if (close < 0) {
                i += run;
                continue;
            }
            for (int k = i; k < close + run; k++) {
                b.setCharAt(k, ' ');
            }
            i = close + run;
        }
        return b.toString();
    }

    @Test
    void slugsShouldFollowGitHubsRules() {
        assertEquals("libtorch-271-conv2d-input-gradients-on-amd-zen-5", slug("libtorch 2.7.1 conv2d input gradients on AMD Zen 5"));
        assertEquals("djls-from_blob-scalars-and-autograd", slug("DJL's `from_blob` scalars and autograd"));
        assertEquals("dreamcluster-launch-a-hostfile-over-ssh", slug("`dreamcluster launch`: a hostfile over ssh"));
        assertEquals("data-parallelism-zero-1", slug("Data parallelism (ZeRO-1)"));
        assertEquals("see-the-docs", slug("See [the docs](docs/x.md)"));
        assertEquals("a--b", slug("a & b"));
    }

    @Test
    void codeSpansShouldHideLinkLikeText() {
        assertEquals("see " + " ".repeat(11) + " and [x](y.md)", withoutCodeSpans("see `[a](b.md)` and [x](y.md)"));
        assertEquals("``unclosed [x](y.md)", withoutCodeSpans("``unclosed [x](y.md)"));
    }
}
