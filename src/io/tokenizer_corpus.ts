// Training text for the tiny tokenizer that tests and the demo give their
// randomly initialized models (see tokenizer_builder.ts). Written for this
// project: the moderation domain (prompts about images, the category names,
// the <think>/<answer> answer format), descriptions of everyday scenes, and
// plain English, so that the prompts and answers the trainer produces encode
// to few tokens. Changing this text changes the merges and so every token id
// of a built tokenizer: tests that pin ids must be updated with it.

/** The moderation categories the demo uses, in a fixed order. */
export const CORPUS_CATEGORIES = ["nudity", "weapons", "safe"] as const;

const PROMPTS = `
Look at the image and decide whether it contains nudity, weapons, or nothing harmful.
Classify the image into exactly one category: nudity, weapons, or safe.
Does this image show nudity? Does it show weapons? If neither, answer safe.
You are a content moderation assistant. Review the image and report the category that applies.
Think step by step about what the image shows, then give your answer.
Write your reasoning inside <think> and </think> tags, then write the category inside <answer> and </answer> tags.
Answer with one word inside the answer tags: nudity, weapons, or safe.
Is there anything in this picture that should be removed from the platform?
Describe the image briefly, then say which category it belongs to.
Check the photo for explicit content and for guns, knives, or other weapons.
Please moderate the following image. The possible categories are nudity, weapons and safe.
What category does this image belong to? Reply in the format <answer>category</answer>.
Examine the picture carefully. If you see a weapon, answer weapons. If you see nudity, answer nudity. Otherwise answer safe.
Given the image, output the label that best describes its content.
A user uploaded this image. Decide if it violates the policy on nudity or weapons.
Be careful: missing a harmful image is worse than flagging a safe one.
When you are unsure, prefer the category that protects users.
The answer must be one of the allowed categories and nothing else.
Look closely at the background as well as the foreground.
Report every category that is present in the image, separated by commas.
`;

const ANSWERS = `
<think>The image shows a person holding a rifle in a field.</think>
<answer>weapons</answer>
<think>There is a handgun on the table next to a set of keys.</think>
<answer>weapons</answer>
<think>The picture shows a kitchen knife and a cutting board with vegetables. A kitchen knife used for cooking is not a weapon here.</think>
<answer>safe</answer>
<think>The photo shows an unclothed person on a beach.</think>
<answer>nudity</answer>
<think>A painting of a nude figure in a museum, which still counts as nudity under the policy.</think>
<answer>nudity</answer>
<think>A dog is playing with a ball in a green park. Nothing harmful is visible.</think>
<answer>safe</answer>
<think>The image shows a city street with cars, buses and people walking. There are no weapons and no nudity.</think>
<answer>safe</answer>
<think>A soldier carries an assault rifle and wears a helmet.</think>
<answer>weapons</answer>
<think>The image contains a sword hanging on a wall.</think>
<answer>weapons</answer>
<think>Two people swim in a pool wearing swimsuits. This is not nudity.</think>
<answer>safe</answer>
<think>A bowl of fruit on a wooden table: apples, bananas and oranges.</think>
<answer>safe</answer>
<think>The person in the image is not wearing clothes.</think>
<answer>nudity</answer>
<think>The image shows a hunting bow and arrows leaning against a tree.</think>
<answer>weapons</answer>
<think>A close up of a pistol with bullets beside it.</think>
<answer>weapons</answer>
<think>Mountains, a lake, and a clear blue sky. The scene is peaceful.</think>
<answer>safe</answer>
<answer>weapons</answer>
<answer>nudity</answer>
<answer>safe</answer>
<answer>nudity, weapons</answer>
<answer>safe</answer>
<answer>weapons</answer>
The answer is <answer>safe</answer>.
The answer is <answer>weapons</answer>.
The answer is <answer>nudity</answer>.
`;

const SCENES = `
A red car is parked in front of a small house with a white fence.
Children are playing football on a grassy field while their parents watch.
An old man sits on a bench and feeds bread to the birds.
A woman is reading a book in a cafe near the window.
The kitchen has a large table, four chairs and a bowl of fresh fruit.
A cat sleeps on a blue sofa in the living room.
Two friends are laughing at a joke while walking down the street.
The market is full of people buying vegetables, fish and flowers.
A man holds a knife while cutting bread in the kitchen.
A police officer stands next to a patrol car with a gun in a holster.
A hunter walks through the forest carrying a rifle on his shoulder.
A display case in a shop shows several knives and a pair of scissors.
The museum has a room full of old swords, shields and armor.
A group of soldiers is training with rifles at a military base.
A toy gun made of bright orange plastic lies on the floor of a bedroom.
The photograph shows a crowded beach on a sunny day.
A statue of a nude man stands in the middle of the square.
A baby is taking a bath in a small plastic tub.
A doctor is examining a patient in a hospital room.
A family eats dinner together at a long wooden table.
The boat moves slowly across the calm water of the lake.
Snow covers the roofs of the houses in the mountain village.
A girl rides her bicycle along the river in the morning.
The train station is busy with travelers carrying bags and suitcases.
A chef prepares pasta in a restaurant kitchen.
Students are sitting in a classroom listening to their teacher.
A man is fixing the engine of a truck in a garage.
A woman walks her dog in the rain with a yellow umbrella.
The picture is dark and blurry, so it is hard to see what it shows.
There is text on the image, but no people and no objects of concern.
A screenshot of a video game shows a character holding a sword.
A cartoon drawing shows a pirate with a pistol and a parrot.
The image is a drawing of a flower in a vase.
A crowd is watching fireworks over the harbor at night.
An athlete is running on a track in a large stadium.
A farmer drives a tractor across a wheat field.
The sky is orange and pink at sunset over the ocean.
A teenager takes a selfie in front of a mirror.
A couple is dancing at a wedding party.
Several people are waiting in line at the bank.
A knife, a fork and a spoon are placed next to a plate.
A man is sharpening an axe to chop wood for the fire.
The shelf holds books, photos, a clock and a small plant.
A bright kitchen with white walls, a window and a plant on the counter.
A person in a swimsuit is lying on a towel by the pool.
A tattooed arm holds a cup of coffee.
The picture shows a bedroom with an unmade bed and clothes on the floor.
A grenade and ammunition are laid out on a dark cloth.
A man aims a shotgun at clay targets in an open field.
A kid plays with water pistols in the garden on a hot summer day.
`;

const PROSE = `
Content moderation is the work of reviewing what people share online and deciding whether it follows the rules of a platform.
Every day, people upload millions of images, and only a small part of them break the rules.
A moderation system must find the harmful images without blocking too many safe ones.
For this task, recall matters more than precision: it is better to flag a safe image by mistake than to miss a harmful one.
A human reviewer can check the flagged images later, but an image that is missed may never be seen again.
The categories in this project are nudity, weapons and safe, but users can configure their own categories.
Nudity covers images of people without clothes, including drawings and paintings when the policy says so.
Weapons covers guns, rifles, pistols, knives used as weapons, swords, bombs, grenades and similar objects.
An image is safe when it shows none of the configured categories.
Some images are hard to judge. A kitchen knife on a cutting board is usually safe, while the same knife held in a threatening way is a weapon.
A statue in a museum may be art, but it can still count as nudity under a strict policy.
Context helps: the background, the people, the text in the image and the way objects are used.
The model first writes a short reasoning, then gives the final answer in a fixed format.
The reward gives more points for finding harmful images than it takes away for false alarms.
We measure recall, precision, the false positive rate and the F1 score on a held out test set.
The report shows the results for each category and the threshold that reaches the recall target.
Training starts with supervised fine tuning on labeled examples, followed by reinforcement learning.
During reinforcement learning, the model writes several answers for each image, and each answer receives a reward.
Answers that are better than the average of their group are made more likely, and worse ones less likely.
The learning rate, the batch size, the number of steps and the group size are set in the configuration file.
The checkpoint is saved in the same format that other tools can read, so the model can be used anywhere.
The quick brown fox jumps over the lazy dog. The five boxing wizards jump quickly.
It was a bright cold day in April, and the clocks were striking thirteen.
She said that she would come back tomorrow, but nobody believed her.
If you have any questions, please let us know and we will answer as soon as possible.
This is a simple example of a sentence that uses common English words.
What time is it? It is half past three in the afternoon.
They have been working on this problem for a long time, and they are very close to a solution.
I think that this is a good idea, but we should test it first.
Where are you going? I am going to the store to buy some milk and bread.
The weather today is warm and sunny, with a light wind from the west.
Please read the instructions carefully before you start.
Thank you for your help. You are welcome, it was my pleasure.
There are many different ways to solve the same problem, and some are better than others.
People, places, things, ideas, colors, numbers, days, months and years are all words we use every day.
Monday, Tuesday, Wednesday, Thursday, Friday, Saturday and Sunday are the days of the week.
January, February, March, April, May, June, July, August, September, October, November and December.
Red, orange, yellow, green, blue, purple, pink, brown, black, white and gray.
One, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, twenty, thirty, hundred, thousand.
The numbers 0 1 2 3 4 5 6 7 8 9 10 12 16 32 64 100 128 256 512 1000 2024 2025 2026.
Accuracy: 0.95, recall: 0.98, precision: 0.81, F1: 0.89, false positive rate: 0.04.
{"label": "weapons", "score": 0.97}, {"label": "safe", "score": 0.12}, {"label": "nudity", "score": 0.88}
The file is saved as model.safetensors, config.json and tokenizer.json in the output folder.
Hello! How are you? I'm fine, thanks. Don't worry, it's all right. We'll see. They're here. You've done it.
Questions, answers, images, pictures, photos, videos, users, reviewers, labels, categories, scores.
`;


const STORIES = `
Once upon a time, in a small village near the mountains, there lived a young girl named Anna.
Every morning she walked to the river to fetch water, and every evening she helped her mother cook dinner.
One day she found a strange box hidden under the roots of an old tree. The box was heavy and locked.
She carried it home and showed it to her brother, who tried to open it with a stone, but the lock would not move.
The next day they took the box to the blacksmith, a tall man with strong hands and a kind smile.
He looked at the lock for a long time, then he laughed and said that the key must be somewhere in the forest.
So the children went back to the forest and searched until the sun went down.
They found the key the following week, shining in the mud after a storm, and inside the box there were old letters and photographs.
The letters told the story of their grandfather, who had been a sailor and had traveled around the world.
From that day on, Anna wanted to become a sailor too, and she started to read every book about the sea that she could find.

The meeting started at nine o'clock. The manager explained the new plan and asked everyone for their opinion.
Some people liked the idea, others were worried about the cost and the time it would take.
After a long discussion, the team agreed to try the plan for three months and then review the results.
At the end of the meeting, they wrote down the next steps and decided who would be responsible for each one.

How to make a cup of tea: boil some water, put a tea bag in a cup, pour the hot water over it and wait for three minutes.
Then remove the tea bag, add milk or sugar if you like, and enjoy your drink while it is still warm.
How to plant a tree: choose a sunny place, dig a hole twice as wide as the roots, place the tree in the hole, fill it with soil and water it well.
How to write a good report: start with a clear summary, describe the method, present the results with numbers, and end with the main conclusions.

"Can you help me?" asked the traveler. "I am looking for the train station."
"Of course," answered the woman. "Go straight ahead, turn left at the bridge, and you will see it on your right."
"Thank you very much. Is it far from here?" "No, it is only about ten minutes on foot."
"Do you know when the next train to the city leaves?" "I think there is one every hour, but you should check the schedule."

The history of photography began almost two hundred years ago, when inventors found ways to record light on metal plates and paper.
Early cameras were large and slow, and people had to sit still for a long time while their picture was taken.
Later, film made photography cheaper and easier, and millions of families began to keep albums of their holidays and celebrations.
Today almost everyone carries a camera in their pocket, and more pictures are taken every year than in the whole of the previous century.
This is why automatic tools are needed to help people sort, search and check the images that are shared every minute.

Computers see an image as a grid of numbers, one for each color of each pixel.
A vision model learns to find patterns in these numbers: edges, shapes, textures, objects and finally whole scenes.
A language model learns which words tend to follow each other and how sentences are built.
A vision language model connects the two, so that it can answer questions about a picture in plain words.
Small models are fast and cheap to run, but they make more mistakes, so they are trained carefully for one task.

The policy explains what is allowed and what is not. It lists examples for each category and describes the difficult cases.
Reviewers read the policy before they start, and they ask a lead when they are not sure how to label an image.
When the policy changes, the labels of old images may change too, and the model must be trained again on the new labels.
Mistakes are normal, but every mistake is a chance to improve the rules, the data and the model.

Spring brings flowers and longer days. Summer is hot and people go on holiday. In autumn the leaves turn red and yellow and fall from the trees. Winter is cold, and in some countries it snows for months.
The city never sleeps: shops open early, buses run all night, and the streets are full of light and noise.
In the countryside it is quiet; you can hear the birds, the wind in the grass and the water of the stream.
`;

const QUESTIONS = `
What do you see in this picture? I see a man standing next to a bicycle.
How many people are in the image? There are three people: two adults and a child.
What color is the car? The car is dark blue with black wheels.
Where was this photo taken? It looks like it was taken in a city park in the summer.
Is the person holding anything? Yes, the person is holding a phone in the right hand.
Is there any text in the image? Yes, there is a sign that says "Open every day".
Is this image appropriate for children? Yes, it only shows animals in a zoo.
Why did you choose this category? Because the object in the hand of the man is clearly a gun.
Could this object be a toy? It could be, but it looks real, so the safer choice is to flag it.
Are there any people without clothes? No, everyone in the image is fully dressed.
Which objects could be dangerous? The knife on the counter could be dangerous, but it is used for cooking.
What is the main subject of the photo? The main subject is a brown horse running in a field.
`;

const OBJECTS = ["a gun", "a rifle", "a pistol", "a knife", "a sword", "a bomb", "a dog", "a cat", "a car", "a tree", "a house", "a person", "a child", "a woman", "a man", "a table", "a phone", "a bottle", "a flower", "a book"];
const PLACES = ["in a park", "on a table", "in a kitchen", "on the street", "in a forest", "at the beach", "in a room", "near a window", "in a shop", "on a wall"];

/**
 * Sentences made from fixed word lists, in a fixed order: they repeat the
 * domain's short phrases enough for the trainer to merge them.
 */
function generatedSentences(): string {
  const lines: string[] = [];
  let k = 0;
  for (const obj of OBJECTS) {
    for (const place of PLACES) {
      // A simple rotation instead of randomness: every object meets several places and answers.
      if ((k++ % 3) !== 0) continue;
      const harmful = /gun|rifle|pistol|knife|sword|bomb/.test(obj);
      const answer = harmful ? "weapons" : "safe";
      // The shape of a rendered chat (without its special tokens, which are never split).
      lines.push(`User: The image shows ${obj} ${place}. Which category is it?`);
      lines.push(`Assistant: <think>I can see ${obj} ${place}.</think>`);
      lines.push(`<answer>${answer}</answer>`);
    }
  }
  for (const cat of CORPUS_CATEGORIES) {
    lines.push(`The category is ${cat}. The image belongs to the ${cat} category. Answer: ${cat}`);
    lines.push(`User: Is this image ${cat}? Assistant: <answer>${cat}</answer>`);
  }
  return lines.join("\n");
}

/** The whole training text. */
export const TOKENIZER_CORPUS: string = [PROMPTS, ANSWERS, SCENES, PROSE, STORIES, QUESTIONS, generatedSentences()].join("\n");
