using FashionMnist.Commands;

// alexnet-fashion: train, evaluate and use a generated AlexNet-style network on Fashion-MNIST.
// With no arguments it runs `train` with its defaults (the README's main command).
return Cli.Run(args);
