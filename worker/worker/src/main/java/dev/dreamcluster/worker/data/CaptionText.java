package dev.dreamcluster.worker.data;

import dev.dreamcluster.config.ConfigError;
import dev.dreamcluster.config.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CoderResult;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The text of a caption sidecar. The rule: UTF-8 (an optional UTF-8 byte-order mark is dropped);
 * a UTF-16 file is read only when it starts with its byte-order mark (FF FE or FE FF), which makes
 * it unambiguous. Anything else (Latin-1 or Windows-1252 accents, UTF-16 without a mark, which
 * shows up as NUL bytes) is refused naming the file: guessing an encoding would silently train on
 * the wrong text, and the tokenizer would see different captions on different machines.
 */
final class CaptionText {
    private CaptionText() {}

    static String read(Path file) {
        byte[] b;
        try {
            b = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ConfigError(file + ": cannot read caption: " + e.getMessage());
        }
        String text;
        if (b.length >= 2 && (b[0] & 0xFF) == 0xFF && (b[1] & 0xFF) == 0xFE) {
            text = decode(file, b, 2, StandardCharsets.UTF_16LE.newDecoder(), "UTF-16LE");
        } else if (b.length >= 2 && (b[0] & 0xFF) == 0xFE && (b[1] & 0xFF) == 0xFF) {
            text = decode(file, b, 2, StandardCharsets.UTF_16BE.newDecoder(), "UTF-16BE");
        } else {
            int skip = b.length >= 3 && (b[0] & 0xFF) == 0xEF && (b[1] & 0xFF) == 0xBB && (b[2] & 0xFF) == 0xBF ? 3 : 0;
            text = decode(file, b, skip, StandardCharsets.UTF_8.newDecoder(), "UTF-8");
        }
        if (text.indexOf('\0') >= 0) {
            throw new ConfigError("caption " + Json.quote(file.toString()) + ": contains NUL characters (UTF-16 without a "
                    + "byte-order mark?); allowed: UTF-8 text, or UTF-16 starting with its byte-order mark");
        }
        return text.strip();
    }

    private static String decode(Path file, byte[] b, int skip, CharsetDecoder d, String name) {
        ByteBuffer in = ByteBuffer.wrap(b, skip, b.length - skip);
        CharBuffer out = CharBuffer.allocate(b.length);
        d.onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        CoderResult r = d.decode(in, out, true);
        if (!r.isError()) {
            r = d.flush(out);
        }
        if (r.isError()) {
            int at = in.position();
            throw new ConfigError("caption " + Json.quote(file.toString()) + ": not valid " + name + " text (byte 0x"
                    + String.format("%02X", b[Math.min(at, b.length - 1)] & 0xFF) + " at offset " + at
                    + "); allowed: UTF-8 text, or UTF-16 starting with its byte-order mark (re-save Latin-1 files as UTF-8)");
        }
        return out.flip().toString();
    }
}
