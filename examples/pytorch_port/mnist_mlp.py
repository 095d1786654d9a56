"""A typical PyTorch MLP script for MNIST: nn.Sequential, a train/validation split,
SGD with Nesterov momentum under a one-cycle schedule, gradient clipping, and a
checkpoint with the model's and the optimizer's state_dict.

mnist_mlp_torch.py is the PyTorch original; mnist_mlp.py runs the same code on
tinygrad_norm. The two files differ only in their import lines
(tests/test_pytorch_port.py checks it, and runs the port).

    python examples/pytorch_port/mnist_mlp.py --epochs 3
    python examples/pytorch_port/mnist_mlp.py --train-subset 5000 --epochs 1 --save-model
"""
import argparse

import tinygrad_norm as torch
import tinygrad_norm.nn as nn
from tinygrad_norm.optim import SGD
from tinygrad_norm.optim.lr_scheduler import OneCycleLR
from tinygrad_norm.utils.data import DataLoader, Subset, random_split
from tinygrad_norm import data as datasets
from tinygrad_norm.data import transforms


def make_model(hidden, dropout):
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, 10),
    )


def train_one_epoch(model, loader, loss_fn, optimizer, scheduler, device, args, epoch):
    model.train()
    running_loss, seen = 0.0, 0
    for step, (images, labels) in enumerate(loader):
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=args.clip)
        optimizer.step()
        scheduler.step()
        running_loss += loss.item() * labels.size(0)
        seen += labels.size(0)
        if step % args.log_interval == 0:
            print(f"epoch {epoch} step {step:4d}/{len(loader)}  loss {loss.item():.4f}  "
                  f"lr {scheduler.get_last_lr()[0]:.4f}")
    return running_loss / seen


@torch.inference_mode()
def evaluate(model, loader, loss_fn, device):
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        total_loss += loss_fn(logits, labels).item() * labels.size(0)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        count += labels.size(0)
    return total_loss / count, correct / count


def main(argv=None):
    parser = argparse.ArgumentParser(description="MNIST MLP")
    parser.add_argument("--data", default="./data", help="where the MNIST files are (or are downloaded to)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--max-lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--clip", type=float, default=1.0, help="max gradient norm")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--train-subset", type=int, default=0, help="use the first N training images (0: all)")
    parser.add_argument("--test-subset", type=int, default=0, help="use the first N test images (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-interval", type=int, default=100)
    parser.add_argument("--save-model", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is available")
    args = parser.parse_args(argv)

    if torch.cuda.is_available() and not args.cpu:
        device = torch.device("cuda")
    elif torch.backends.mps.is_available() and not args.cpu:
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    print(f"using {device}")
    torch.manual_seed(args.seed)

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    full_train = datasets.MNIST(args.data, train=True, download=True, transform=transform)
    test_set = datasets.MNIST(args.data, train=False, download=True, transform=transform)
    if args.train_subset:
        full_train = Subset(full_train, list(range(args.train_subset)))
    if args.test_subset:
        test_set = Subset(test_set, list(range(args.test_subset)))
    n_val = int(len(full_train) * args.val_fraction)
    train_set, val_set = random_split(full_train, [len(full_train) - n_val, n_val],
                                      generator=torch.Generator().manual_seed(args.seed))

    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=1000)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = make_model(args.hidden, args.dropout).to(device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    optimizer = SGD(model.parameters(), lr=args.max_lr, momentum=0.9, nesterov=True,
                    weight_decay=args.weight_decay)
    scheduler = OneCycleLR(optimizer, max_lr=args.max_lr, epochs=args.epochs,
                           steps_per_epoch=len(train_loader))

    for epoch in range(1, args.epochs + 1):
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer, scheduler, device, args, epoch)
        val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)
        print(f"epoch {epoch}: train loss {train_loss:.4f}  val loss {val_loss:.4f}  val accuracy {val_acc:.4f}")

    test_loss, test_acc = evaluate(model, test_loader, loss_fn, device)
    print(f"test loss {test_loss:.4f}  test accuracy {test_acc:.4f}")
    if args.save_model:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": args.epochs},
                   "mnist_mlp.pt")
    return test_acc


if __name__ == "__main__":
    main()
