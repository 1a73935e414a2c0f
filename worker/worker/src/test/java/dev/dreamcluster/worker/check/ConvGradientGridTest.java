package dev.dreamcluster.worker.check;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import dev.dreamcluster.worker.model.ConvForm;
import dev.dreamcluster.worker.model.OpShape;
import dev.dreamcluster.worker.model.Ops;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The check that would have caught the libtorch conv2d defect: convolutions over a grid of kernel
 * sizes, strides, channel counts and spatial sizes up to the UNet's real ones, input, weight and bias
 * gradients against float64, through the form the startup check chooses. Measured on a second random
 * draw, so the choice is tested, not just repeated. Also prints where libtorch's own kernel is wrong
 * on this machine (docs/known-defects.md quotes it).
 */
class ConvGradientGridTest {
    @Test
    void everyConvolutionShapeShouldHaveExactGradientsThroughItsCheckedForm() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            OpCheck check = new OpCheck(m, DataType.FLOAT32, 11);
            List<String> failures = new ArrayList<>();
            List<String> directWrong = new ArrayList<>();
            int shapes = 0;
            for (int k : new int[] {1, 3}) {
                for (int stride : k == 3 ? new int[] {1, 2} : new int[] {1}) {
                    for (int hw : new int[] {8, 16, 32, 64}) {
                        for (int cin : new int[] {1, 3, 4, 8, 16, 32}) {
                            for (int cout : new int[] {1, 3, 4, 8, 12, 16, 17, 32}) {
                                if (stride == 2 && hw == 8) {
                                    continue;
                                }
                                OpShape.Conv s = new OpShape.Conv(new Shape(2, cin, hw, hw), new Shape(cout, cin, k, k), true, stride, k / 2);
                                Ops ops = new Ops();
                                check.checkAll(Set.of(s), ops);
                                OpCheck.Row direct = check.measure(s, ConvForm.DIRECT, 31 + shapes);
                                if (!direct.exact()) {
                                    directWrong.add(s.key() + " " + String.format("%.2g", direct.error()));
                                }
                                ConvForm chosen = ops.convForms().get(s);
                                OpCheck.Row again = check.measure(s, chosen, 977 + shapes);
                                if (!again.exact()) {
                                    failures.add(s.key() + " " + chosen + " " + again.error());
                                }
                                shapes++;
                            }
                        }
                    }
                }
            }
            System.out.printf("conv grid: %d shapes at %d threads; libtorch's conv2d inexact for %d of them:%n", shapes,
                    JniUtils.getNumThreads(), directWrong.size());
            directWrong.forEach(l -> System.out.println("  " + l));
            assertTrue(failures.isEmpty(), "inexact through the checked form: " + failures);
        }
    }
}
