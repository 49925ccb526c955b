using System.CommandLine;
using FashionMnist.Commands;

// alexnet-fashion: train, evaluate and use a generated AlexNet-style network on Fashion-MNIST.
// With no arguments it runs `train` with its defaults (the README's main command).
var root = new RootCommand("Train, evaluate and use FashionNet, an AlexNet-style network for 28x28 images, or the canonical 2012 AlexNet (--network alexnet), both generated at compile time from their layer attributes.");
Command train = TrainCommand.Create();
root.Subcommands.Add(train);
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(PredictCommand.Create());
root.Subcommands.Add(SummaryCommand.Create());
root.Subcommands.Add(MakeSubsetCommand.Create());
root.SetAction(parse => train.Parse([]).Invoke());
return root.Parse(args).Invoke();
