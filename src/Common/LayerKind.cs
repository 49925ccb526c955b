// Shared by the generator and the runtime (src/Common/README.md).
#if ALEXNET_GENERATOR
namespace AlexNetCompiler.Generators.Model;
#else
namespace AlexNetCompiler;
#endif

/// <summary>
/// A layer of the spec, one per layer attribute. Generated code names the kinds, so both sides share them; a new kind
/// is appended, so that the values of the others never change.
/// </summary>
#if ALEXNET_GENERATOR
internal
#else
public
#endif
enum LayerKind { Conv2d, Relu, Lrn, MaxPool, Dropout, Dense, SoftmaxCrossEntropy, AdaptiveAvgPool }
