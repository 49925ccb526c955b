using AlexNetCompiler.Training;
using TorchSharp;
using static AlexNetCompiler.ReferenceTests.TorchInterop;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>Sgd (PyTorch variant) against TorchSharp's torch.optim.SGD, step by step.</summary>
public sealed class SgdReferenceTests
{
    // Each step is three element-wise float32 operations per parameter on O(1) values; the only freedom is
    // whether a multiply-add is fused, worth an ulp or two per step: |d| <= 1e-6 + 1e-6*|ref| after 5 steps.
    private const double Relative = 1e-6, Absolute = 1e-6;

    [Theory]
    [InlineData(0.01f, 0.9f, 5e-4f)]   // the paper's constants
    [InlineData(0.1f, 0.9f, 0.01f)]    // larger steps make any difference in the rule visible
    [InlineData(0.05f, 0f, 0f)]        // plain SGD
    [InlineData(0.05f, 0.5f, 0f)]      // momentum, no weight decay
    public void FiveStepsMatchTorchOptimSgd(float learningRate, float momentum, float weightDecay)
    {
        const int length = 1000; // not a multiple of the vector width: exercises the scalar tail too
        float[] ours = RandomArray(length, 51);
        using var dispose = torch.NewDisposeScope();
        var parameter = new TorchSharp.Modules.Parameter(ToTensor((float[])ours.Clone(), length));
        var torchSgd = torch.optim.SGD([parameter], learningRate, momentum: momentum, weight_decay: weightDecay);
        var sgd = new Sgd(length, new SgdOptions(learningRate, momentum, weightDecay));

        for (int step = 0; step < 5; step++)
        {
            float[] gradient = RandomArray(length, 60 + (ulong)step);
            if (step == 3)
            {
                // A schedule changes the rate between steps: both must use the new one from here on.
                sgd.LearningRate = learningRate / 10;
                foreach (var group in torchSgd.ParamGroups) group.LearningRate = learningRate / 10;
            }
            torchSgd.zero_grad();
            (parameter * ToTensor(gradient, length)).sum().backward(); // d/dp sum(p * g) = g
            torchSgd.step();
            sgd.Step(ours, gradient);
            AssertClose(ToArray(parameter), ours, Relative, Absolute, $"parameters after step {step + 1}");
        }
        Assert.Equal(5, sgd.StepCount);
    }
}
